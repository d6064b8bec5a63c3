"""The one error tree of opskit.

Every error opskit raises derives from :class:`OpsKitError`. Where a builtin fits, the error
also derives from it, so ``except ValueError`` keeps working for callers who do not know opskit.
Each error carries fields (the container, the port, the field of a spec, ...) and its message
says what was seen and ends with a hint.

    OpsKitError
    ├── EngineUnavailable (ConnectionError)   the engine did not answer: down, unreachable, slow
    │   ├── EngineTimeout                     no answer about one container (the engine is busy)
    │   └── SwarmUnavailable                  no manager of a swarm answered (each one's reason)
    ├── InsecureEngine (ConnectionError)      a remote tcp:// engine without TLS verification
    ├── InvalidSpec (ValueError)              a spec field is wrong; names the field
    ├── InvalidTarget (ValueError)            a target is ambiguous or malformed
    ├── NotFound (LookupError)
    │   ├── ContainerNotFound
    │   ├── ImageNotFound
    │   ├── NetworkNotFound
    │   ├── ServiceNotFound                   no Swarm service by that name or ID
    │   └── NodeNotFound                      no Swarm node by that name, ID or label
    ├── Conflict
    │   ├── NameConflict                      a name is held by a container opskit does not own
    │   └── PortInUse                         a host port is taken
    ├── OutOfScope (PermissionError)          the container is not opskit's to touch
    ├── WaitTimeout (TimeoutError)            a container did not reach a state in time
    ├── DeployFailed                          a new replica failed; carries the rollback outcome
    ├── BuildFailed                           an image build failed; carries the log tail
    ├── ActionFailed                          a bulk action failed on some containers
    ├── FleetFailed                           an operation failed on some engines of a fleet
    ├── RolloutFailed                         a Swarm update failed; says whether it rolled back
    ├── CopyFailed                            docker cp failed (missing path, unsafe archive)
    ├── StorageError (OSError)                a journal or bundle could not be written
    ├── InvalidBundle (ValueError)            a file is not an incident bundle opskit can read
    └── EngineError                           any other engine refusal, its message passed through

Engine exceptions from docker-py are translated in one place, :func:`opskit.engine.translate`,
always with ``raise ... from exc`` so the engine's own error stays reachable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .redact import redact_lines, redact_text

__all__ = [
    "ActionFailed",
    "BuildFailed",
    "Conflict",
    "ContainerNotFound",
    "CopyFailed",
    "DeployFailed",
    "EngineError",
    "EngineTimeout",
    "EngineUnavailable",
    "FleetFailed",
    "ImageNotFound",
    "InsecureEngine",
    "InvalidBundle",
    "InvalidSpec",
    "InvalidTarget",
    "NameConflict",
    "NetworkNotFound",
    "NodeNotFound",
    "NotFound",
    "OpsKitError",
    "OutOfScope",
    "PortInUse",
    "RolloutFailed",
    "ServiceNotFound",
    "StorageError",
    "SwarmUnavailable",
    "WaitTimeout",
]


class OpsKitError(Exception):
    """Root of every opskit error.

    Args:
        message: what was seen.
        hint: what to do about it; appended as ``Hint: ...``.
    """

    default_hint = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} Hint: {self.hint}"
        return self.message

    def _render_traceback_(self) -> list[str]:
        """How IPython shows the error in a notebook: the message, not a traceback."""
        return [f"{type(self).__name__}: {self}"]


class EngineUnavailable(OpsKitError, ConnectionError):
    """The Docker engine at ``host`` did not answer (down, unreachable, or too slow)."""

    def __init__(self, host: str, reason: str, *, hint: str | None = None) -> None:
        self.host = host
        self.reason = reason
        super().__init__(
            f"Docker engine at {host} is unavailable: {reason}.",
            hint=hint
            or "start the engine (`make engine`, or `setsid dockerd &` as root) or point "
            "DOCKER_HOST / opskit.connect(url) at one that runs; without an engine, "
            "notebooks/06-incident-analysis.ipynb works on a recorded incident.",
        )


class EngineTimeout(EngineUnavailable):
    """The engine answers, but not this call about one container within the client timeout.

    Docker 20.10 can hold a container's lock for about 30 s when the container is paused while
    its healthcheck probe is starting (the probe's exec waits on the frozen container); every
    ``docker inspect``, ``unpause`` or ``exec`` of that container waits meanwhile, while
    ``docker ps`` and calls about other containers still answer.
    """

    def __init__(self, host: str, what: str, target: str, timeout: str) -> None:
        self.target = target
        about = what if target in what else f"{what} ({target})"
        super().__init__(
            host, f"{about} got no answer in time ({timeout})",
            hint=f"the engine may be busy with {target} itself: a container paused while its "
            "healthcheck runs can block calls about it for about 30 s; retry, or connect with "
            "a longer timeout (opskit.connect(timeout=60)).")


class SwarmUnavailable(EngineUnavailable):
    """No manager of a swarm answered a call (down, unreachable, or electing a leader).

    Attributes:
        reasons: each manager's address and why it did not answer.
    """

    def __init__(self, what: str, reasons: Mapping[str, str]) -> None:
        self.what = what
        self.reasons = dict(reasons)
        detail = "; ".join(f"{host}: {why}" for host, why in self.reasons.items())
        super().__init__(
            ", ".join(self.reasons) or "no manager", f"{what}: no manager answered ({detail})",
            hint="a swarm whose leader was just lost elects a new one in about 10 s: try "
            "again; if it persists, more than half of the managers are down (quorum lost): "
            "bring them back, or `docker swarm init --force-new-cluster` on a survivor.")


class InsecureEngine(OpsKitError, ConnectionError):
    """A non-loopback ``tcp://`` engine was given without TLS verification."""

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(
            f"Refusing to talk to {host} without TLS verification: anyone on the path could "
            "run containers as root there.",
            hint="pass tls=docker.tls.TLSConfig(ca_cert=..., client_cert=(...), verify=True), "
            "or set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH.",
        )


class InvalidSpec(OpsKitError, ValueError):
    """A field of a :class:`~opskit.spec.service.ServiceSpec` is wrong.

    Attributes:
        field: dotted name of the field (``healthcheck.interval``, ``ports[8080]``).
        value: the value that was given (never shown when the field may hold a secret).
        allowed: a description of what is allowed.
    """

    default_hint = "help(opskit.ServiceSpec) lists every field and what it allows."

    def __init__(self, field: str, problem: str, *, allowed: str = "", value: Any = None,
                 hint: str | None = None) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        text = f"Invalid spec field '{field}': {problem}."
        if allowed and hint is None:
            hint = f"allowed: {allowed}."
        super().__init__(text, hint=hint)


class InvalidTarget(OpsKitError, ValueError):
    """A target (name, ID or service) is malformed or ambiguous for the call."""

    def __init__(self, target: str, problem: str, *, hint: str | None = None) -> None:
        self.target = target
        super().__init__(f"Target '{target}' {problem}.", hint=hint)


class NotFound(OpsKitError, LookupError):
    """Something named does not exist on the engine."""


class ContainerNotFound(NotFound):
    """No container (nor service) answers to ``target`` on ``host``."""

    def __init__(self, target: str, host: str = "") -> None:
        self.target = target
        self.host = host
        where = f" on {host}" if host else ""
        super().__init__(
            f"No container or service named '{target}'{where}.",
            hint="list what exists with ops.containers() or `opskit ps -a`.",
        )


class ImageNotFound(NotFound):
    """The image is not on the engine, and opskit never pulls implicitly."""

    def __init__(self, image: str, host: str = "") -> None:
        self.image = image
        self.host = host
        where = f" on {host}" if host else ""
        super().__init__(
            f"Image '{image}' is not present{where}; opskit never pulls implicitly.",
            hint="build it (ops.build(...), or ops.demo_images() for opskit/demo-*), load it "
            "with `docker load`, or set pull='missing' in the spec to allow a pull.",
        )


class NetworkNotFound(NotFound):
    """No network of that name or ID."""

    def __init__(self, network: str, host: str = "") -> None:
        self.network = network
        self.host = host
        super().__init__(
            f"No network named '{network}'" + (f" on {host}." if host else "."),
            hint="create it with ops.network_create(name), or list networks with `docker "
            "network ls`.",
        )


class ServiceNotFound(NotFound):
    """No Swarm service answers to ``target``."""

    def __init__(self, target: str, host: str = "") -> None:
        self.target = target
        self.host = host
        where = f" on the swarm of {host}" if host else ""
        super().__init__(f"No Swarm service named '{target}'{where}.",
                         hint="list them with swarm.services() (`docker service ls`); "
                         "deploy one with swarm.deploy(spec).")


class NodeNotFound(NotFound):
    """No Swarm node answers to ``target`` (an ID, a hostname or an ``opskit.lab.node``-style
    label value)."""

    def __init__(self, target: str, known: Sequence[str] = ()) -> None:
        self.target = target
        super().__init__(f"No Swarm node named '{target}'.",
                         hint=f"known nodes: {', '.join(known) or 'none'} "
                         "(swarm.nodes(), `docker node ls`).")


class Conflict(OpsKitError):
    """Something is already taken."""


class NameConflict(Conflict):
    """A container name is held by a container opskit does not own."""

    def __init__(self, name: str, holder_id: str) -> None:
        self.name = name
        self.holder_id = holder_id
        super().__init__(
            f"Container name '{name}' is held by container {holder_id[:12]}, which opskit "
            "did not create; it was not touched.",
            hint="choose another service name, or remove that container yourself "
            f"(`docker rm -f {holder_id[:12]}`) if it is yours to remove.",
        )


class PortInUse(Conflict):
    """A host port the spec publishes is already taken."""

    def __init__(self, port: int, host_ip: str, engine_message: str, *, service: str = "") -> None:
        self.port = port
        self.host_ip = host_ip
        self.service = service
        self.engine_message = engine_message
        super().__init__(
            f"Host port {host_ip}:{port} is already in use"
            + (f" (service '{service}')" if service else "")
            + f"; the engine said: {engine_message}. No container was left behind.",
            hint=f"free port {port} (`ss -ltnp 'sport = :{port}'` shows who holds it) or "
            "publish another host port in the spec.",
        )


class OutOfScope(OpsKitError, PermissionError):
    """The container is outside opskit's scope (not created by it, or labels forged)."""

    def __init__(self, target: str, container_id: str, reason: str, *, action: str = "") -> None:
        self.target = target
        self.container_id = container_id
        self.reason = reason
        self.action = action
        verb = f" {action}" if action else " act on"
        super().__init__(
            f"Refusing to{verb} container '{target}' ({container_id[:12]}): {reason}.",
            hint="opskit only touches containers it deployed in this scope; pass "
            "allow_foreign=True to this call if you really mean to.",
        )


class WaitTimeout(OpsKitError, TimeoutError):
    """A container did not reach the wanted condition within the timeout.

    Probe output and log lines are masked (:func:`opskit.base.redact.redact_text`) before they are
    stored or shown, so the message is safe to print in a terminal or a notebook.

    Attributes:
        container: name of the container.
        condition: ``"running"`` or ``"healthy"``.
        timeout: seconds waited.
        state: the last state seen (``running``, ``exited``, ...), and ``health``.
        exit_code: the exit code when the container stopped.
        last_probe: output of the last healthcheck probe, if any (secrets masked).
        last_logs: the last log lines of the container (secrets masked).
    """

    def __init__(self, container: str, condition: str, timeout: float, *, state: str = "",
                 health: str = "", exit_code: int | None = None, last_probe: str = "",
                 last_logs: Sequence[str] = (), reason: str = "") -> None:

        self.container = container
        self.condition = condition
        self.timeout = timeout
        self.state = state
        self.health = health
        self.exit_code = exit_code
        self.last_probe = redact_text(last_probe or "", table="health")
        self.last_logs = redact_lines([str(line) for line in last_logs], table="logs")
        seen = (redact_text(reason) if reason
                else f"it is {state or 'unknown'}" + (f"/{health}" if health else ""))
        parts = [f"Container '{container}' did not become {condition} within {timeout:g}s; {seen}"]
        said = re.search(rf"\bcode {exit_code}\b", seen) is not None
        if exit_code is not None and state == "exited" and not said:
            parts.append(f"exit code {exit_code}")  # once, even when the reason names it
        if self.last_probe:
            parts.append(f'last probe said: "{self.last_probe.strip()[:200]}"')
        if self.last_logs:
            parts.append("last log lines: " + " | ".join(x[:160] for x in self.last_logs[-3:]))
        super().__init__(
            "; ".join(parts) + ".",
            hint="look at ops.logs() and ops.inspect() for the container, check the "
            "healthcheck command runs inside the image, or raise the timeout.",
        )


class DeployFailed(OpsKitError):
    """A deploy did not complete; ``rolled_back`` says whether the old containers were restored."""

    def __init__(self, service: str, reason: str, *, rolled_back: bool,
                 cause: OpsKitError | None = None) -> None:
        self.service = service
        self.reason = reason
        self.rolled_back = rolled_back
        self.cause = cause
        outcome = ("the previous containers were restored and still serve"
                   if rolled_back else "nothing was left behind")
        super().__init__(
            f"Deploy of service '{service}' failed: {reason} ({outcome}).",
            hint="fix the spec or the image and deploy again; ops.logs() shows the failed "
            "replica's output above.",
        )


class BuildFailed(OpsKitError):
    """``docker build`` failed; carries the failing step and the log tail.

    The engine's message and the log lines are masked (:func:`opskit.base.redact.redact_lines`: a
    step's ``RUN mysql -pX``, a key printed by a step) before they are stored or shown.

    Attributes:
        tag: the reference the image was to get.
        engine_message: what the engine said (secrets masked).
        log_tail: the build's log lines (secrets masked).
    """

    def __init__(self, tag: str, message: str, log_tail: Sequence[str] = ()) -> None:

        self.tag = tag
        self.engine_message = redact_text(message, table="build")
        self.log_tail = redact_lines([str(line) for line in log_tail], table="build")
        message = self.engine_message
        tail = (" Last lines: " + " | ".join(x.strip() for x in self.log_tail[-4:] if x.strip())
                if self.log_tail else "")
        super().__init__(
            f"Build of '{tag}' failed: {message.strip()}.{tail}",
            hint="fix the Dockerfile step named above; the whole log is on the exception's "
            "log_tail.",
        )


class ActionFailed(OpsKitError):
    """A bulk action (stop, restart, ...) failed on at least one container.

    Attributes:
        results: every per-container result, the successful ones included.
    """

    def __init__(self, action: str, target: str, results: Sequence[Any]) -> None:
        self.action = action
        self.target = target
        self.results = list(results)
        failed = [r for r in self.results if not r.ok]
        detail = "; ".join(f"{r.name}: {r.error}" for r in failed[:5])
        super().__init__(
            f"{action} failed on {len(failed)} of {len(self.results)} container(s) of "
            f"'{target}': {detail}.",
            hint="the exception's results list says what happened to each container.",
        )


class FleetFailed(OpsKitError):
    """An operation over several engines (a fleet deploy, a teardown) failed on some of them.

    Attributes:
        operation: what was done (``"deploy of web"``).
        outcomes: every engine's outcome (:class:`opskit.fleet.Outcome`), the successful ones
            included: what each engine got, or why not.
    """

    def __init__(self, operation: str, outcomes: Mapping[str, Any]) -> None:
        self.operation = operation
        self.outcomes = dict(outcomes)
        failed = {name: o for name, o in self.outcomes.items() if not o.ok}
        detail = "; ".join(f"{name}: {o.error}" for name, o in list(failed.items())[:5])
        super().__init__(
            f"{operation} failed on {len(failed)} of {len(self.outcomes)} engine(s): {detail}.",
            hint="the exception's outcomes say what each engine got; the engines where it "
            "worked keep the result, and running it again is safe (deploy is idempotent).",
        )


class RolloutFailed(OpsKitError):
    """A Swarm service update did not complete.

    Attributes:
        service: the service; state: the last ``UpdateStatus.State`` (``rollback_completed``,
            ``paused``, ``rollback_paused``, ``updating`` past the deadline);
        rolled_back: whether the service runs its previous spec again;
        message: Swarm's own message (the task error that failed it), or opskit's.
    """

    def __init__(self, service: str, state: str, message: str, *, rolled_back: bool) -> None:
        self.service = service
        self.state = state
        self.message_from_swarm = message
        self.rolled_back = rolled_back
        outcome = ("it was rolled back to the previous spec" if rolled_back else
                   "it was NOT rolled back: the service may run a mix of old and new tasks")
        super().__init__(
            f"Update of Swarm service '{service}' failed ({state}): {message}; {outcome}.",
            hint="swarm.tasks(service) shows each task's error; fix the image or healthcheck "
            "and deploy again" + ("" if rolled_back else
                                  ", or roll back by hand with swarm.rollback(service)") + ".")


class CopyFailed(OpsKitError):
    """``docker cp`` failed: a missing path, or an archive that would escape its folder."""

    def __init__(self, container: str, path: str, reason: str, *, hint: str | None = None) -> None:
        self.container = container
        self.path = path
        super().__init__(
            f"Copy with container '{container}' at '{path}' failed: {reason}.",
            hint=hint or "check the path exists (`opskit exec TARGET -- ls -l PATH`).",
        )


class StorageError(OpsKitError, OSError):
    """A journal, bundle or record could not be written; nothing partial was left."""

    def __init__(self, path: str, cause: OSError, *, too_big: bool = False) -> None:
        self.path = path
        self.cause = cause
        self.too_big = too_big
        reason = cause.strerror or str(cause)
        hint = ("record a shorter time range or fewer services, or raise the size cap."
                if too_big else "free disk space or choose another path; the previous file, "
                "if any, is intact.")
        super().__init__(f"Could not write {path}: {reason}.", hint=hint)


class InvalidBundle(OpsKitError, ValueError):
    """A file could not be opened as an incident bundle (missing, damaged, another format)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"Cannot open {path} as an opskit incident bundle: {reason}.",
                         hint="give the path of a .opsb file written by ops.record() (an "
                         "interrupted write leaves no file, never a partial one).")


class EngineError(OpsKitError):
    """The engine refused a request; its own message is passed through."""

    def __init__(self, what: str, engine_message: str, *, status: int | None = None,
                 hint: str | None = None) -> None:
        self.what = what
        self.engine_message = engine_message
        self.status = status
        super().__init__(
            f"{what} failed: the engine said ({status or 'no status'}): {engine_message}.",
            hint=hint or "the engine's message above says what it refused.",
        )

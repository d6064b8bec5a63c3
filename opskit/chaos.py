"""Fault injection for runbooks and tests, scoped to opskit's own containers, each with an undo.

Every fault is resolved to one container inside opskit's scope (see :mod:`opskit.targets`),
written to the action journal and to the chaos ledger (``state_dir()/chaos.jsonl``) before it is
injected, and returns a :class:`Fault` whose ``undo()`` puts things back. If the injecting process
dies midway, :func:`residue` reads the ledger and the engine to report what is still in place
(a paused container, a cut network, a CPU hog) so a person can undo it; a paused container is
reported as paused, never as crashed.

Faults: ``crash`` (the container's process is killed from the host by PID, so the engine sees a
real crash rather than an API kill; local engine only), ``kill`` (API), ``stop``, ``pause``,
``unhealthy`` (``docker exec NAME make-unhealthy``: the demo web server hangs, stopped with
SIGSTOP, so its probes time out; a restart cures it), ``corrupt`` (``docker exec NAME
make-corrupt``: the demo web's health file is removed from the container's filesystem, which a
restart keeps; only a recreate from the image cures it), ``cpu`` (a busy loop inside), ``oom`` (a
shell inside doubles a string until the kernel's OOM killer acts within the container's memory
limit; refused without a limit), ``delay`` (every process of the container is stopped with
SIGSTOP from the host for ``seconds``, then continued: requests wait in the socket's backlog and
are answered late; local engine only; a per-packet ``netem`` delay needs the ``sch_netem``
kernel module, which this kit does not assume), ``disconnect`` (from a network).

``unhealthy`` and ``corrupt`` run scripts of the image ``opskit/demo-web`` (see
:func:`opskit.images.demo_images`); both are undone by its ``make-healthy``. A hung process is
seen only when a probe times out, so give the healthcheck a short ``timeout`` (the image's own
is 1 s; Docker's default is 30 s).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import errors
from .actions import ActionJournal
from .durable import AppendLog
from .engine import Engine, state_dir
from .manage import thaw
from .targets import Ref, list_raw, resolve_one

__all__ = ["FAULTS", "Fault", "inject", "residue", "undo_fault", "undo_residue"]

FAULTS = ("crash", "kill", "stop", "pause", "unhealthy", "corrupt", "cpu", "oom", "delay",
          "disconnect")
_HOST_SIDE = ("crash", "delay")  # signals sent from the host to the container's PIDs
_SCRIPTS = {"unhealthy": "make-unhealthy", "corrupt": "make-corrupt"}  # opskit/demo-web's
_HEAL = "make-healthy"  # undoes both: continues a hung httpd, writes the health file back
_CPU_MARK = "/tmp/.opskit-chaos-cpu"
_OOM_MARK = "/tmp/.opskit-chaos-oom"
MAX_DELAY = 600.0


@dataclass
class Fault:
    """An injected fault and how to undo it."""

    id: str
    kind: str
    container: str
    container_id: str
    injected_at: float
    details: dict[str, Any] = field(default_factory=dict)
    engine: Engine | None = field(default=None, repr=False)
    undone: bool = False

    def undo(self) -> None:
        """Put things back (start, unpause, make healthy, reconnect, stop the hog)."""
        if self.undone or self.engine is None:
            return
        undo_fault(self.engine, self.kind, self.container_id, self.details.get("network", ""),
                   pids=self.details.get("pids", ()))
        self.undone = True
        _mark_undone(self.id)


def _mark_undone(fault_id: str) -> None:
    _ledger().append([json.dumps({"id": fault_id, "phase": "undone", "ts": time.time()})],
                     sync=True)


def _ledger() -> AppendLog:
    return AppendLog(state_dir() / "chaos.jsonl")


def _exec(engine: Engine, ref: Ref, cmd: list[str], *, detach: bool = False) -> int:
    """``docker exec [-d] NAME CMD...``; a program that is missing or fails raises.

    Raises:
        InvalidTarget: the image has no ``cmd[0]`` (the runtime answers 126 or 127).
        EngineError: the program ran and failed; its output is the message.
    """
    created = engine.api.exec_create(ref.id, cmd)
    out = engine.api.exec_start(created["Id"], detach=detach)
    if detach:
        return 0
    code = engine.api.exec_inspect(created["Id"]).get("ExitCode")
    text = (out or b"").decode("utf-8", "replace").strip()
    if code in (126, 127):
        raise errors.InvalidTarget(ref.name, f"has no program {cmd[0]!r} in its image, so this "
                                   f"fault cannot be injected ({text or f'exit code {code}'})",
                                   hint=f"{cmd[0]} is one of the opskit/demo-web image's fault "
                                   "scripts (ops.demo_images() builds it up to date); for another "
                                   "image use crash, kill, stop, pause, delay or disconnect.")
    if code:
        raise errors.EngineError(f"chaos exec {cmd[0]!r} in {ref.name}",
                                 text or f"exit code {code}",
                                 hint="the program's output above says why it failed.")
    return 0


def inject(engine: Engine, kind: str, target: str, *, journal: ActionJournal | None = None,
           network: str | None = None, seconds: float = 2.0) -> Fault:
    """Inject one fault into one of opskit's containers.

    Equivalent to the docker command of the kind: ``docker kill``, ``docker stop -t 1``,
    ``docker pause``, ``docker exec NAME make-unhealthy`` (the web server hangs; a restart cures
    it), ``docker exec NAME make-corrupt`` (the health file is removed from the container's
    filesystem; only a recreate from the image cures it), ``docker network disconnect``, or a
    signal from the host (``crash``, ``delay``).

    Args:
        kind: one of :data:`FAULTS`.
        target: a container name or ID, or a service of one replica.
        journal: the action journal to record the injection in.
        network: for ``disconnect``, the network to cut (default: the container's first).
        seconds: for ``delay``, how long the processes stay stopped (above 0, at most 600).

    Raises:
        InvalidTarget: unknown fault, a ``crash`` or ``delay`` on a remote engine, an ``oom``
            for a container without a memory limit, an ``unhealthy`` or ``corrupt`` for an
            image without the script (``opskit/demo-web`` has them).
        EngineError: the engine refused, or the fault's script failed.
        InvalidSpec: ``seconds`` out of range.
        OutOfScope, ContainerNotFound: the target is not opskit's or does not exist.
    """
    if kind not in FAULTS:
        raise errors.InvalidTarget(target, f"cannot be given unknown fault {kind!r}",
                                   hint="choose one of " + ", ".join(FAULTS) + ".")
    if kind in _HOST_SIDE and not (engine.is_local and os.geteuid() == 0):
        raise errors.InvalidTarget(target, f"cannot be given a {kind} from the host: the engine "
                                   "is not local or this process is not root",
                                   hint="use kind='kill' for an API kill, or 'pause' for a "
                                   "freeze, instead.")
    if kind == "delay" and (isinstance(seconds, bool) or not isinstance(seconds, int | float)
                            or not 0 < seconds <= MAX_DELAY):
        raise errors.InvalidSpec("seconds", f"{seconds!r} is not a delay in seconds",
                                 allowed=f"above 0 and at most {MAX_DELAY:g}", value=seconds)
    ref = resolve_one(engine, target, action=f"inject {kind} into")
    fault = Fault(uuid.uuid4().hex[:12], kind, ref.name, ref.id, time.time(), engine=engine)
    if kind == "disconnect":
        fault.details["network"] = _network_of(engine, ref, network)
    elif kind == "oom":
        fault.details["memory_limit"] = _memory_limit(engine, ref)
    elif kind == "delay":
        fault.details.update(pids=_host_pids(engine, ref), seconds=float(seconds))
    record = journal.begin(f"chaos:{kind}", ref.id, ref.name, service=ref.service,
                           reason="chaos", state_before=ref.state) if journal else None
    _ledger().append([json.dumps({"id": fault.id, "phase": "injected", "kind": kind,
                                  "container": ref.name, "container_id": ref.id,
                                  "network": fault.details.get("network", ""),
                                  "pids": fault.details.get("pids", []),
                                  "ts": fault.injected_at})], sync=True)
    try:
        _apply(engine, kind, ref, fault)
    except Exception as exc:
        err = errors.translate(exc, f"chaos {kind} on {ref.name}", host=engine.host,
                               target=ref.name)
        if isinstance(exc, errors.OpsKitError):  # refused before acting: nothing left in place
            _ledger().append([json.dumps({"id": fault.id, "phase": "failed", "ts": time.time()})],
                             sync=True)
        if journal and record:
            journal.finish(record, "failed", error=err.message)
        raise err from exc
    if journal and record:
        journal.finish(record, "ok", details={"fault_id": fault.id, **fault.details})
    return fault


def _apply(engine: Engine, kind: str, ref: Ref, fault: Fault) -> None:
    api = engine.api
    if kind == "crash":
        pid = int(api.inspect_container(ref.id)["State"]["Pid"])
        if pid <= 0:
            raise errors.InvalidTarget(ref.name, "is not running, so it cannot crash")
        os.kill(pid, signal.SIGKILL)
        fault.details["pid"] = pid
    elif kind == "kill":
        api.kill(ref.id)
    elif kind == "stop":
        api.stop(ref.id, timeout=1)
    elif kind == "pause":
        api.pause(ref.id)
    elif kind in _SCRIPTS:
        _exec(engine, ref, [_SCRIPTS[kind]])
    elif kind == "cpu":
        _exec(engine, ref, ["sh", "-c", f"touch {_CPU_MARK}; while [ -f {_CPU_MARK} ]; do :; "
                            "done"], detach=True)
    elif kind == "oom":
        _exec(engine, ref, ["sh", "-c", f"touch {_OOM_MARK}; x=0123456789abcdef; "
                            f"while [ -f {_OOM_MARK} ]; do x=\"$x$x\"; done"], detach=True)
    elif kind == "delay":
        _signal(fault.details["pids"], signal.SIGSTOP)
        timer = threading.Timer(fault.details["seconds"], fault.undo)
        timer.daemon = True  # if this process dies first, residue() reports the stopped PIDs
        timer.start()
    else:
        api.disconnect_container_from_network(ref.id, fault.details["network"])


def undo_fault(engine: Engine, kind: str, container_id: str, network: str = "", *,
               pids: Sequence[int] = ()) -> None:
    """Undo one fault by kind: start, unpause, make healthy, stop the hog, continue the
    stopped processes, or reconnect.

    ``unhealthy`` and ``corrupt`` are both undone by ``docker exec NAME make-healthy``
    (continue the hung httpd, write the health file back); a container that is no longer
    running, or no longer exists (recreated), is left as it is.

    Raises:
        EngineError: the engine refused (the container may have been removed meanwhile).
    """
    api = engine.api
    try:
        state = _states(engine, [container_id]).get(container_id)
        if kind in ("crash", "kill", "stop"):
            if state != "running":
                api.start(container_id)
        elif kind == "pause":
            if state == "paused":
                thaw(engine, container_id)
        elif kind in (*_SCRIPTS, "cpu", "oom"):
            cmd = {"cpu": ["rm", "-f", _CPU_MARK],
                   "oom": ["rm", "-f", _OOM_MARK]}.get(kind, [_HEAL])
            if state == "running":
                created = api.exec_create(container_id, cmd)
                api.exec_start(created["Id"])
        elif kind == "delay":
            _signal([pid for pid in pids if _belongs(pid, container_id)], signal.SIGCONT)
        elif kind == "disconnect" and network:
            api.connect_container_to_network(container_id, network)
    except Exception as exc:
        raise errors.translate(exc, f"undo of chaos {kind}", host=engine.host,
                               target=container_id) from exc


def _listing(engine: Engine, ids: list[str]) -> dict[str, dict[str, Any]]:
    """``docker ps -a`` entries of these containers by ID (gone ones are absent).

    The listing, not ``docker inspect``: the engine answers it from a snapshot even while it
    holds a paused container's lock (see :class:`~opskit.errors.EngineTimeout`), and a paused
    container is exactly what the residue and the undo must look at.
    """
    if not ids:
        return {}
    items = list_raw(engine, filters={"id": ids})  # the engine matches a prefix
    return {item["Id"]: item for item in items if item["Id"] in ids}


def _states(engine: Engine, ids: list[str]) -> dict[str, str]:
    return {cid: item.get("State", "") for cid, item in _listing(engine, ids).items()}


def _memory_limit(engine: Engine, ref: Ref) -> int:
    """The container's memory limit; an OOM fault without one would take the host's memory."""
    limit = int((engine.api.inspect_container(ref.id).get("HostConfig") or {}).get("Memory")
                or 0)
    if not limit:
        raise errors.InvalidTarget(ref.name, "has no memory limit, so a memory hog inside it "
                                   "would take the host's memory",
                                   hint="deploy it with a limit first (ServiceSpec(memory="
                                   "'64m')), or use the demo image opskit/demo-hog.")
    return limit


def _host_pids(engine: Engine, ref: Ref) -> list[int]:
    """The host PIDs of the container's processes (``docker top``)."""
    if ref.state != "running":
        raise errors.InvalidTarget(ref.name, f"is {ref.state or 'not running'}, so it cannot "
                                   "be delayed", hint="start it first.")
    top = engine.api.top(ref.id)
    column = list(top.get("Titles") or []).index("PID")
    return [int(row[column]) for row in top.get("Processes") or []]


def _signal(pids: Sequence[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), sig)


def _belongs(pid: int, container_id: str) -> bool:
    """Whether a host PID is still one of the container's processes (its cgroup names the
    container), so a PID reused since by another process is never signalled."""
    try:
        return container_id in Path(f"/proc/{int(pid)}/cgroup").read_text()
    except OSError:
        return False


def _stopped(pid: int) -> bool:
    """Whether a host process is stopped by a signal (``T`` in ``/proc/PID/stat``)."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["T"]


def _network_of(engine: Engine, ref: Ref, network: str | None) -> str:
    nets = list(((engine.api.inspect_container(ref.id).get("NetworkSettings") or {})
                 .get("Networks") or {}).keys())
    net = network or (nets[0] if nets else "")
    if net not in nets:
        raise errors.InvalidTarget(ref.name, f"is not on network {net!r}",
                                   hint=f"choose one of: {', '.join(nets) or 'none'}.")
    return net


def undo_residue(engine: Engine, entry: dict[str, Any]) -> None:
    """Undo a fault found by :func:`residue` (its injector died) and mark it undone."""
    undo_fault(engine, entry["kind"], entry["container_id"], entry.get("network", ""),
               pids=entry.get("pids") or ())
    _mark_undone(entry["id"])


def residue(engine: Engine) -> list[dict[str, Any]]:
    """Faults injected but never undone, with what the engine shows now.

    Each entry has the ledger's fields plus ``state`` (``paused`` is reported as paused, not as a
    crash) and ``still_in_place`` (the fault's effect is visible: paused, disconnected, ...;
    always true for ``unhealthy``, ``corrupt``, ``cpu`` and ``oom``, whose effect is inside the
    container; their undo is harmless if a restart cured it meanwhile). An injection refused
    before it acted (say, an image without the fault's script) is not residue.
    """
    path = state_dir() / "chaos.jsonl"
    if not path.exists():
        return []
    open_faults: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if item.get("phase") == "injected":
            open_faults[item["id"]] = item
        else:
            open_faults.pop(item.get("id", ""), None)
    listed = _listing(engine, sorted({item["container_id"] for item in open_faults.values()}))
    out = []
    for item in open_faults.values():
        data = listed.get(item["container_id"])
        if data is None:
            continue  # the container is gone: nothing left to undo
        state = data.get("State", "")
        nets = ((data.get("NetworkSettings") or {}).get("Networks") or {})
        still = {"pause": state == "paused", "stop": state == "exited",
                 "kill": state == "exited", "crash": state == "exited",
                 "disconnect": bool(item.get("network")) and item["network"] not in nets,
                 "delay": any(_stopped(pid) and _belongs(pid, item["container_id"])
                              for pid in item.get("pids") or ()),
                 }.get(item["kind"], True)
        out.append({**item, "state": state, "still_in_place": still})
    return out

"""Fault injection for runbooks and tests, scoped to opskit's own containers, each with an undo.

Every fault is resolved to one container inside opskit's scope (see :mod:`opskit.engine.targets`),
written to the action journal and to the chaos ledger (``state_dir()/chaos.jsonl``) before it is
injected, and returns a :class:`Fault` whose ``undo()`` puts things back. If the injecting process
dies midway, :func:`residue` reads the ledger and the engine to report what is still in place
(a paused container, a cut network, a CPU hog) so a person can undo it; a paused container is
reported as paused, never as crashed. The ledger is shared by every scope on the host and is
only a hint: the residue lists, and an undo touches, only containers the caller's scope owns
(the same check as every mutating call).

Faults: ``crash`` (the container's process is killed from the host by PID, so the engine sees a
real crash rather than an API kill; local engine only, and only a PID whose cgroup names the
container: an engine in a VM or another PID namespace reports PIDs that mean other processes
here, and is refused), ``kill`` (API), ``stop``, ``pause``,
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
:func:`opskit.act.images.demo_images`); both are undone by its ``make-healthy``. A hung process is
seen only when a probe times out, so give the healthcheck a short ``timeout`` (the image's own
is 1 s; Docker's default is 30 s).
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..base import errors
from ..base.durable import AppendLog, state_dir
from ..engine.connection import Engine
from ..engine.targets import (
    Ref,
    list_raw,
    ref_from_summary,
    resolve_one,
)
from ..engine.translate import translate
from .actions import ActionJournal
from .hostpids import (
    belongs,
    checked_pids,
    is_stopped,
    signal_pids,
)
from .manage import thaw

__all__ = ["FAULTS", "Fault", "inject", "residue", "undo_fault", "undo_residue"]

FAULTS = ("crash", "kill", "stop", "pause", "unhealthy", "corrupt", "cpu", "oom", "delay",
          "disconnect")
_HOST_SIDE = ("crash", "delay")  # signals sent from the host to the container's PIDs
_SCRIPTS = {"unhealthy": "make-unhealthy", "corrupt": "make-corrupt"}  # opskit/demo-web's
_HEAL = "make-healthy"  # undoes both: continues a hung httpd, writes the health file back
_CPU_MARK = "/tmp/.opskit-chaos-cpu"
_OOM_MARK = "/tmp/.opskit-chaos-oom"
MAX_DELAY = 600.0
_FULL_ID = re.compile(r"[0-9a-f]{64}")


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
        InvalidTarget: unknown fault, a ``crash`` or ``delay`` on a remote engine or on one
            whose PIDs are not this host's (another PID namespace, a VM), an ``oom``
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
    try:
        if kind == "disconnect":
            fault.details["network"] = _network_of(engine, ref, network)
        elif kind == "oom":
            fault.details["memory_limit"] = _memory_limit(engine, ref)
        elif kind == "delay":
            fault.details.update(pids=_host_pids(engine, ref), seconds=float(seconds))
        elif kind == "crash":
            fault.details["pid"] = _main_pid(engine, ref)
    except Exception as exc:  # refused before any record: nothing was done
        raise translate(exc, f"chaos {kind} on {ref.name}", host=engine.host,
                               target=ref.name) from exc
    record = journal.begin(f"chaos:{kind}", ref.id, ref.name, service=ref.service,
                           reason="chaos", state_before=ref.state) if journal else None
    _ledger().append([json.dumps({"id": fault.id, "phase": "injected", "kind": kind,
                                  "scope": engine.scope, "host": engine.host,
                                  "container": ref.name, "container_id": ref.id,
                                  "network": fault.details.get("network", ""),
                                  "pids": fault.details.get("pids", []),
                                  "ts": fault.injected_at})], sync=True)
    try:
        _apply(engine, kind, ref, fault)
    except Exception as exc:
        err = translate(exc, f"chaos {kind} on {ref.name}", host=engine.host,
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
        if not signal_pids([fault.details["pid"]], ref.id, signal.SIGKILL):
            raise errors.InvalidTarget(ref.name, "stopped running before it could crash",
                                       hint="start it and inject the crash again.")
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
        signal_pids(fault.details["pids"], ref.id, signal.SIGSTOP)
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
    running, or no longer exists (recreated), is left as it is. The container must be in the
    engine's scope, as for any mutating call: the chaos ledger is shared, so what it names is
    checked, never trusted.

    Raises:
        OutOfScope: the container is not opskit's in this scope; nothing was done.
        EngineError: the engine refused (the container may have been removed meanwhile).
    """
    api = engine.api
    item = _listing(engine, [container_id]).get(container_id)
    if item is None:
        return  # gone (or not a full ID): nothing to put back
    ref = ref_from_summary(item)
    reason = ref.owned_reason(engine)
    if reason:
        raise errors.OutOfScope(ref.name, ref.id, reason, action=f"undo chaos {kind} on")
    try:
        state = item.get("State", "")
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
            signal_pids(pids, container_id, signal.SIGCONT)
        elif kind == "disconnect" and network:
            api.connect_container_to_network(container_id, network)
    except Exception as exc:
        raise translate(exc, f"undo of chaos {kind}", host=engine.host,
                               target=container_id) from exc


def _listing(engine: Engine, ids: list[str]) -> dict[str, dict[str, Any]]:
    """``docker ps -a`` entries of these containers by ID (gone ones are absent).

    The listing, not ``docker inspect``: the engine answers it from a snapshot even while it
    holds a paused container's lock (see :class:`~opskit.base.errors.EngineTimeout`), and a paused
    container is exactly what the residue and the undo must look at.
    """
    if not ids:
        return {}
    items = list_raw(engine, filters={"id": ids})  # the engine matches a prefix
    return {item["Id"]: item for item in items if item["Id"] in ids}


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
    """The host PIDs of the container's processes (``docker top``), each checked to be one
    (see :func:`_checked_pids`)."""
    if ref.state != "running":
        raise errors.InvalidTarget(ref.name, f"is {ref.state or 'not running'}, so it cannot "
                                   "be delayed", hint="start it first.")
    top = engine.api.top(ref.id)
    column = list(top.get("Titles") or []).index("PID")
    return checked_pids(ref, [int(row[column]) for row in top.get("Processes") or []], "delay")


def _main_pid(engine: Engine, ref: Ref) -> int:
    """The host PID of the container's main process (``State.Pid``), checked to be its own."""
    pid = int((engine.api.inspect_container(ref.id).get("State") or {}).get("Pid") or 0)
    if pid <= 0:
        raise errors.InvalidTarget(ref.name, "is not running, so it cannot crash",
                                   hint="start it first.")
    return checked_pids(ref, [pid], "crash")[0]


def _network_of(engine: Engine, ref: Ref, network: str | None) -> str:
    nets = list(((engine.api.inspect_container(ref.id).get("NetworkSettings") or {})
                 .get("Networks") or {}).keys())
    net = network or (nets[0] if nets else "")
    if net not in nets:
        raise errors.InvalidTarget(ref.name, f"is not on network {net!r}",
                                   hint=f"choose one of: {', '.join(nets) or 'none'}.")
    return net


def undo_residue(engine: Engine, entry: dict[str, Any]) -> None:
    """Undo a fault found by :func:`residue` (its injector died) and mark it undone.

    The entry is checked, not trusted: its container must be opskit's in the engine's scope,
    as for any mutating call, and a delay's PIDs are continued only while their cgroup names
    that container.

    Raises:
        InvalidTarget: the entry is not one of :func:`residue`'s.
        OutOfScope: its container is not opskit's in this scope; nothing was done.
        EngineError: the engine refused.
    """
    kind, cid = entry.get("kind"), entry.get("container_id")
    if kind not in FAULTS or not isinstance(cid, str) or not _FULL_ID.fullmatch(cid):
        raise errors.InvalidTarget(str(cid), f"is not the container of a chaos residue entry "
                                   f"(fault {kind!r})",
                                   hint="pass an entry of ops.chaos_residue() as it is.")
    undo_fault(engine, kind, cid, str(entry.get("network") or ""),
               pids=[p for p in entry.get("pids") or () if isinstance(p, int)])
    _mark_undone(str(entry["id"]))


def _open_faults() -> dict[str, dict[str, Any]]:
    """Ledger entries injected and never undone nor failed, by fault ID; malformed lines
    (torn, or not written by :func:`inject`) are skipped."""
    path = state_dir() / "chaos.jsonl"
    if not path.exists():
        return {}
    found: dict[str, dict[str, Any]] = {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        if item.get("phase") != "injected":
            found.pop(item["id"], None)
        elif item.get("kind") in FAULTS and _FULL_ID.fullmatch(str(item.get("container_id"))):
            found[item["id"]] = item
    return found


def residue(engine: Engine) -> list[dict[str, Any]]:
    """Faults injected but never undone, with what the engine shows now.

    Only faults on containers the engine's scope owns are listed (the same check as every
    mutating call): the ledger is shared by every scope on the host, so another scope's faults,
    and entries naming a container opskit does not own, are left out.

    Each entry has the ledger's fields plus ``state`` (``paused`` is reported as paused, not as a
    crash) and ``still_in_place`` (the fault's effect is visible: paused, disconnected, ...;
    always true for ``unhealthy``, ``corrupt``, ``cpu`` and ``oom``, whose effect is inside the
    container; their undo is harmless if a restart cured it meanwhile). An injection refused
    before it acted (say, an image without the fault's script) is not residue.
    """
    open_faults = _open_faults()
    listed = _listing(engine, sorted({item["container_id"] for item in open_faults.values()}))
    owned: dict[str, bool] = {}
    out = []
    for item in open_faults.values():
        cid = item["container_id"]
        data = listed.get(cid)
        if data is None:
            continue  # the container is gone: nothing left to undo
        if cid not in owned:
            owned[cid] = ref_from_summary(data).owned_reason(engine) is None
        if not owned[cid] or item.get("scope", engine.scope) != engine.scope:
            continue  # not this scope's to undo
        state = data.get("State", "")
        nets = ((data.get("NetworkSettings") or {}).get("Networks") or {})
        still = {"pause": state == "paused", "stop": state == "exited",
                 "kill": state == "exited", "crash": state == "exited",
                 "disconnect": bool(item.get("network")) and item["network"] not in nets,
                 "delay": any(is_stopped(pid) and belongs(pid, cid)
                              for pid in item.get("pids") or () if isinstance(pid, int)),
                 }.get(item["kind"], True)
        out.append({**item, "state": state, "still_in_place": still})
    return out

"""Chaos across a swarm's nodes, each fault with its undo and a residue report.

    fault = node_fault(swarm, "node-3", "kill", handle)   # or "freeze", "cut", "drain"
    fault.wait_moved("web")        # seconds until web's replicas run healthy elsewhere
    fault.undo(); fault.residue()  # what the fault left behind, if anything

``drain`` goes through the managers (``docker node update --availability drain``). The other
faults act on the node's engine process or link, which only whoever runs the node can do: a
:class:`NodeHandle` gives opskit that power (the test swarm's nodes are one; on a real cluster
an agent or ssh wrapper on the node would be). Every fault and undo is written to the swarm's
action journal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from ..base import errors
from .frames import node_name
from .service import find_node, node_in_scope, replicas_running, set_availability
from .watch import Swarm

__all__ = ["FAULTS", "NodeFault", "NodeHandle", "node_fault"]

Fault = Literal["kill", "freeze", "cut", "drain"]
FAULTS: tuple[str, ...] = ("kill", "freeze", "cut", "drain")
_UNDO = {"kill": "start", "freeze": "thaw", "cut": "mend"}


class NodeHandle(Protocol):
    """Power over one node's engine process and link."""

    def kill(self) -> None:
        """SIGKILL the node's dockerd (its containers keep running)."""

    def start(self) -> None:
        """Start the node's dockerd again and wait until it answers."""

    def freeze(self) -> None:
        """SIGSTOP the node's dockerd."""

    def thaw(self) -> None:
        """SIGCONT it."""

    def cut(self) -> None:
        """Take the node's network link down."""

    def mend(self) -> None:
        """Bring the link up again."""


@dataclass
class NodeFault:
    """A fault made on a node; :meth:`undo` ends it, :meth:`residue` says what is left."""

    swarm: Swarm
    node: str
    node_id: str
    fault: str
    handle: NodeHandle | None
    started: float = field(default_factory=time.monotonic)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    undone: bool = False
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (s, running, wanted)
    availability_before: str = "active"

    def running_elsewhere(self, service: str) -> tuple[int, int]:
        """(replicas running on other nodes, replicas wanted)."""
        return replicas_running(self.swarm.managers, service, off_node=self.node_id)

    def wait_moved(self, service: str, timeout: float = 120.0, every: float = 0.25) -> float:
        """Seconds from the fault until every replica of ``service`` runs (healthy: Swarm calls
        a task with a healthcheck running only once healthy) on other nodes.

        Raises:
            WaitTimeout: not within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                running, wanted = self.running_elsewhere(service)
            except errors.SwarmUnavailable:
                running, wanted = 0, -1
            now = time.monotonic() - self.started
            self.samples.append((now, running, wanted))
            if wanted >= 0 and running >= wanted:
                return now
            if time.monotonic() > deadline:
                raise errors.WaitTimeout(service, f"replicas running off node {self.node}",
                                         timeout, state=f"{running}/{wanted} running")
            time.sleep(every)

    def availability(self, least: int = 1) -> float:
        """Share of the samples taken by :meth:`wait_moved` with at least ``least`` replicas
        running off the node (1.0 = never fewer)."""
        ok = [r >= least for _, r, w in self.samples if w >= 0]
        return sum(ok) / len(ok) if ok else 0.0

    def undo(self) -> None:
        """End the fault: start, thaw, mend or activate the node (journaled)."""
        if self.undone:
            return
        record = self.swarm.journal.begin(f"chaos-undo-{self.fault}", self.node_id, self.node)
        try:
            if self.fault == "drain":  # back to what it was (a person may have drained it)
                set_availability(self.swarm.managers, self.node_id,
                                 self.availability_before or "active",
                                 scope=self.swarm.scope, reason="chaos undo")
            else:
                assert self.handle is not None
                getattr(self.handle, _UNDO[self.fault])()
        except Exception as exc:
            self.swarm.journal.finish(record, "failed", error=str(exc))
            raise
        self.swarm.journal.finish(record, "ok")
        self.undone = True

    def residue(self, *, orphans: Callable[[], list[str]] | None = None) -> list[str]:
        """What the fault left, after :meth:`undo`: the node not ready or not active, services
        short of replicas, ``orphans()`` (task containers the node still runs that the swarm
        moved). Empty when nothing is left."""
        left = [] if self.undone else [f"the {self.fault} of {self.node} is not undone"]
        for node in self.swarm.managers.nodes():
            if str(node.get("ID")) == self.node_id:
                state = (node.get("Status") or {}).get("State")
                avail = (node.get("Spec") or {}).get("Availability")
                if state != "ready":
                    left.append(f"node {self.node} is {state}")
                if avail != self.availability_before:
                    left.append(f"node {self.node} is {avail}, was {self.availability_before}")
        for service in self.swarm.managers.services():
            name = str(service["Spec"]["Name"])
            mode = (service.get("Spec") or {}).get("Mode") or {}
            if "Replicated" not in mode:
                continue
            running, wanted = replicas_running(self.swarm.managers, name)
            if running < wanted:
                left.append(f"service {name} runs {running} of {wanted}")
        if orphans is not None:
            left += [f"orphaned task container {o} on {self.node}" for o in orphans()]
        return left


def node_fault(swarm: Swarm, node: str, fault: str, handle: NodeHandle | None = None
               ) -> NodeFault:
    """Make ``fault`` on ``node``; see the module docstring.

    Raises:
        InvalidSpec: an unknown fault, or a process fault without a ``handle``.
        NodeNotFound: no such node. OutOfScope: a node not opted in for the scope
            (``io.opskit.scope=SCOPE``), for every fault.
    """
    if fault not in FAULTS:
        raise errors.InvalidSpec("fault", f"{fault!r} is not a node fault",
                                 allowed=", ".join(FAULTS))
    if fault != "drain" and handle is None:
        raise errors.InvalidSpec("handle", f"a {fault} needs power over the node's engine "
                                 "process or link", hint="pass a NodeHandle for the node "
                                 "(an agent on it), or use fault='drain', which goes through "
                                 "the managers.")
    found = find_node(swarm.managers.nodes(), node)
    node_id, name = str(found["ID"]), node_name(found)
    why = node_in_scope(found, swarm.scope)
    if why:  # chaos is an action on the node like a drain: opted-in nodes only
        raise errors.OutOfScope(node, node_id, why, action=f"chaos {fault}")
    before = str((found.get("Spec") or {}).get("Availability", ""))
    record = swarm.journal.begin(f"chaos-{fault}", node_id, name, reason="chaos")
    try:
        if fault == "drain":
            set_availability(swarm.managers, node_id, "drain", scope=swarm.scope,
                             reason="chaos")
        else:
            assert handle is not None
            getattr(handle, fault)()
    except Exception as exc:
        swarm.journal.finish(record, "failed", error=str(exc))
        raise
    swarm.journal.finish(record, "ok")
    return NodeFault(swarm, name, node_id, fault, handle, availability_before=before)

"""Calls to a Swarm's managers: each with a timeout, failing over to another manager.

Service, task and node calls and service/node events are answered by managers only; any
manager forwards them to the leader. When the leader is lost the others hold calls until a
new one is elected (about 10 s on a three-manager swarm) and a stopped or hung manager holds
them for ever: so every call here has a short timeout (``timeout``, 5 s by default) and is
tried on the next manager, in turn, until ``wait`` seconds have passed (20 s by default, two
elections). A refusal that is an answer (404, 409, 400) is raised at once: asking another
manager would get the same.

Each method says the ``docker`` command it matches. ``docker service rollback`` has no docker-py
call: :meth:`Managers.rollback` is ``POST /services/{id}/update?version=N&rollback=previous``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..base import errors
from .calls import is_timeout, is_transport, request, status_of
from .connection import Engine
from .events import fetch_events
from .translate import translate

log = logging.getLogger("opskit")

__all__ = ["CALL_TIMEOUT", "ELECTION_WAIT", "Managers"]

CALL_TIMEOUT = 5.0
ELECTION_WAIT = 20.0
_NOT_MANAGER = "not a swarm manager"
# a 500 with one of these is the swarm between leaders, not an answer
_TRANSIENT = ("does not have a leader", "deadline exceeded", "code = unavailable", "raft",
              "leadership", "transport is closing", "connection")


class Managers:
    """A swarm, as the managers opskit may call.

    Args:
        engines: one :class:`~opskit.engine.connection.Engine` per manager (any order; the one
            that answered last is asked first).
        timeout: seconds for one call to one manager.
        wait: seconds to keep trying the managers in turn before
            :class:`~opskit.base.errors.SwarmUnavailable`.
    """

    def __init__(self, engines: Sequence[Engine], *, timeout: float = CALL_TIMEOUT,
                 wait: float = ELECTION_WAIT) -> None:
        if not engines:
            raise errors.InvalidTarget("managers", "is empty",
                                       hint="give at least one manager's engine URL")
        self.engines = list(engines)
        self.timeout = timeout
        self.wait = wait
        self._first = 0

    @property
    def hosts(self) -> list[str]:
        return [e.host for e in self.engines]

    def call(self, what: str, method: str, path: str, *args: str,
             params: Mapping[str, Any] | None = None, body: Any = None, kind: str = "",
             target: str = "", wait: float | None = None) -> Any:
        """One call, failing over; see the module docstring.

        Raises:
            SwarmUnavailable: no manager answered within ``wait``.
            InvalidTarget: every manager said it is not a swarm manager.
            ServiceNotFound, NodeNotFound: a 404 about a ``kind`` of ``service`` or ``node``.
            EngineError: the swarm refused (its message passed through).
        """
        deadline = time.monotonic() + (self.wait if wait is None else wait)
        reasons: dict[str, str] = {}
        not_manager: set[str] = set()
        while True:
            for offset in range(len(self.engines)):
                index = (self._first + offset) % len(self.engines)
                engine = self.engines[index]
                if engine.host in not_manager:
                    continue
                try:
                    result = request(engine.api, method, path, *args,
                                     params=dict(params or {}), body=body, timeout=self.timeout)
                except Exception as exc:
                    status = status_of(exc)
                    reason = _short(exc)
                    if status is None and not is_transport(exc):
                        raise translate(exc, what, host=engine.host) from exc
                    if status is None and method != "GET" and is_timeout(exc):
                        # the manager may have applied it: sending it again elsewhere could
                        # apply it twice or fail "out of sequence" after it landed
                        raise errors.EngineUnavailable(
                            engine.host, f"{what}: no answer within {self.timeout:g} s",
                            hint="the change may have been applied: look (swarm.services(), "
                            "swarm.nodes()) before you repeat it.") from exc
                    if status in (None, 502, 503) or (status == 500 and any(
                            m in reason.lower() for m in _TRANSIENT)):
                        reasons[engine.host] = reason
                        if _NOT_MANAGER in reason.lower():
                            not_manager.add(engine.host)
                        log.debug("%s on %s: %s (trying another manager)", what, engine.host,
                                  reason)
                        continue
                    raise self._refusal(exc, what, engine.host, kind, target) from exc
                self._first = index
                return result
            if len(not_manager) == len(self.engines):
                raise errors.InvalidTarget(
                    ", ".join(self.hosts), "is not a Swarm manager (no engine given is one)",
                    hint="`docker swarm init` on one engine (or join it to a swarm as a "
                    "manager), or connect opskit to a manager's engine.")
            if time.monotonic() >= deadline:
                raise errors.SwarmUnavailable(what, reasons)
            time.sleep(0.5)

    @staticmethod
    def _refusal(exc: BaseException, what: str, host: str, kind: str,
                 target: str) -> errors.OpsKitError:
        if status_of(exc) == 404 and kind == "service":
            return errors.ServiceNotFound(target, host)
        if status_of(exc) == 404 and kind == "node":
            return errors.NodeNotFound(target)
        if status_of(exc) == 404:  # a network, a secret...: Swarm's own words
            return errors.EngineError(what, _short(exc), status=404)
        return translate(exc, what, host=host)

    # -- reads ------------------------------------------------------------------------------

    def swarm(self) -> dict[str, Any]:
        """``docker swarm inspect`` (``GET /swarm``)."""
        out: dict[str, Any] = self.call("docker swarm inspect", "GET", "/swarm")
        return out

    def nodes(self) -> list[dict[str, Any]]:
        """``docker node ls`` as the API's node objects."""
        out: list[dict[str, Any]] = self.call("docker node ls", "GET", "/nodes") or []
        return out

    def node(self, node_id: str) -> dict[str, Any]:
        """``docker node inspect ID``."""
        out: dict[str, Any] = self.call(f"docker node inspect {node_id}", "GET", "/nodes/{0}",
                                        node_id, kind="node", target=node_id)
        return out

    def services(self, filters: Mapping[str, Sequence[str]] | None = None
                 ) -> list[dict[str, Any]]:
        """``docker service ls`` (``GET /services``, with ``filters``)."""
        params = {"filters": json.dumps(dict(filters))} if filters else None
        out: list[dict[str, Any]] = self.call("docker service ls", "GET", "/services",
                                              params=params) or []
        return out

    def service(self, name: str) -> dict[str, Any]:
        """``docker service inspect NAME``."""
        out: dict[str, Any] = self.call(f"docker service inspect {name}", "GET",
                                        "/services/{0}", name, kind="service", target=name)
        return out

    def tasks(self, filters: Mapping[str, Sequence[str]] | None = None) -> list[dict[str, Any]]:
        """``docker service ps`` (``GET /tasks``, with ``filters``: service, node,
        desired-state, label)."""
        params = {"filters": json.dumps(dict(filters))} if filters else None
        out: list[dict[str, Any]] = self.call("docker service ps", "GET", "/tasks",
                                              params=params) or []
        return out

    def events(self, since_ns: int, until_ns: int,
               filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """``docker events --since S --until U`` from a manager (service and node events are
        only there), failing over like every call."""
        reasons: dict[str, str] = {}
        for offset in range(len(self.engines)):
            engine = self.engines[(self._first + offset) % len(self.engines)]
            try:
                return fetch_events(engine.api, since_ns, until_ns, filters=filters,
                                    timeout=self.timeout, host=engine.host)
            except errors.OpsKitError as exc:
                reasons[engine.host] = exc.message
        raise errors.SwarmUnavailable("docker events", reasons)

    # -- writes -----------------------------------------------------------------------------

    def create_service(self, body: Mapping[str, Any]) -> str:
        """``docker service create`` from an Engine API body; the new service's ID."""
        out = self.call(f"docker service create {body.get('Name')}", "POST",
                        "/services/create", body=dict(body), wait=self.wait)
        return str((out or {}).get("ID", ""))

    def update_service(self, service_id: str, version: int, spec: Mapping[str, Any], *,
                       rollback: bool = False, name: str = "") -> list[str]:
        """``docker service update`` with the whole spec (``POST /services/{id}/update?
        version=N``), or ``docker service rollback`` with ``rollback=True``; Swarm's
        warnings."""
        params: dict[str, Any] = {"version": str(version)}
        if rollback:
            params["rollback"] = "previous"
        verb = "rollback" if rollback else "update"
        out = self.call(f"docker service {verb} {name or service_id}", "POST",
                        "/services/{0}/update", service_id, params=params, body=dict(spec),
                        kind="service", target=name or service_id)
        return [str(w) for w in (out or {}).get("Warnings") or []]

    def remove_service(self, service_id: str, name: str = "") -> None:
        """``docker service rm``."""
        self.call(f"docker service rm {name or service_id}", "DELETE", "/services/{0}",
                  service_id, kind="service", target=name or service_id)

    def update_node(self, node_id: str, version: int, spec: Mapping[str, Any]) -> None:
        """``docker node update`` with the whole node spec (the API replaces it)."""
        self.call(f"docker node update {node_id}", "POST", "/nodes/{0}/update", node_id,
                  params={"version": str(version)}, body=dict(spec), kind="node",
                  target=node_id)


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc)
    return text if len(text) <= 200 else text[:197] + "..."

"""``ops.diagnose("web")``: every rule on one service, plus the checks rules cannot make alone.

Findings cover the five failure classes people ask about: deployment (never started, image
gone), management (an action opskit took failed), communication (a published port not bound or
not answering, a network gone), detection (no healthcheck, a probe that cannot run) and recovery
(crash loop, quarantine). Each finding carries its evidence and a hint.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

from ..act.actions import ActionJournal
from ..engine.connection import Engine
from ..engine.targets import resolve
from ..observe.inspection import ContainerInfo
from ..records.event_records import Event, parse_event
from ..records.findings import Finding
from .rules import ContainerView, RuleConfig, evaluate

__all__ = ["diagnose"]

_ORDER = {"critical": 0, "warning": 1, "info": 2}


def _finding(info: ContainerInfo, kind: str, severity: str, failure_class: str, hint: str,
             **evidence: Any) -> Finding:
    return Finding(container_id=info.id, container=info.name, service=info.service, kind=kind,
                   severity=severity, since=info.started_at or info.created or datetime.now(UTC),
                   evidence=evidence, hint=hint, failure_class=failure_class)


def _recent_events(engine: Engine, container_id: str, since_s: float) -> list[Event]:
    now = datetime.now(UTC).timestamp()
    try:
        payloads = engine.api.events(since=f"{now - since_s:.9f}", until=f"{now:.9f}",
                                     decode=True, filters={"container": [container_id]})
        return [parse_event(p, host=engine.host) for p in payloads]
    except Exception:  # no events is still a diagnosis: the rules say what inspect shows
        return []


def _communication(engine: Engine, info: ContainerInfo) -> list[Finding]:
    found = []
    bindings = (info.attrs.get("HostConfig") or {}).get("PortBindings") or {}
    if info.state == "running":
        for key, binds in bindings.items():
            if binds and key not in info.ports:
                found.append(_finding(info, "port_unbound", "critical", "communication",
                                      f"the engine did not publish {key}; recreate the "
                                      "container (ops.deploy) and check the host port is free.",
                                      port=key))
        if engine.is_local:
            for key, published in info.ports.items():
                host_ip, _, port = published.split(",")[0].rpartition(":")
                if key.endswith("/tcp") and port.isdigit() and not _answers(host_ip, int(port)):
                    found.append(_finding(
                        info, "port_unreachable", "warning", "communication",
                        f"nothing answers on {published}; is the service listening on "
                        f"{key.split('/')[0]} inside the container?", port=published))
    for net in info.networks:
        try:
            engine.api.inspect_network(net)
        except Exception:
            found.append(_finding(info, "network_missing", "critical", "communication",
                                  f"network {net} is gone; ops.deploy recreates it.",
                                  network=net))
    return found


def _answers(host_ip: str, port: int) -> bool:
    target = "127.0.0.1" if host_ip in ("", "0.0.0.0") else ("::1" if host_ip == "::" else
                                                              host_ip)
    try:
        with socket.create_connection((target, port), timeout=0.5):
            return True
    except OSError:
        return False


def diagnose(engine: Engine, target: str, *, rules: RuleConfig | None = None,
             actions: ActionJournal | None = None, quarantined: set[str] | None = None,
             since: float = 600.0) -> list[Finding]:
    """Run every rule and check on a container or service; most severe first.

    Args:
        target: a service, container name or ID.
        rules: thresholds (defaults otherwise).
        actions: the action journal, to report actions that failed.
        quarantined: names a watchdog holds in quarantine.
        since: seconds of engine events to look at.

    Raises:
        ContainerNotFound: nothing answers to ``target``.
    """
    found: list[Finding] = []
    now = datetime.now(UTC)
    failed_actions = None
    if actions is not None:
        frame = actions.frame()
        failed_actions = frame[frame["result"].astype(str) == "failed"]
    for ref in resolve(engine, target):
        info = ContainerInfo.from_attrs(engine.api.inspect_container(ref.id))
        view = ContainerView(info=info, events=_recent_events(engine, info.id, since), now=now)
        found.extend(evaluate(view, rules))
        if info.state == "created":
            found.append(_finding(info, "never_started", "critical", "deployment",
                                  "the container was created but never started; ops.deploy "
                                  "starts it, and its error says why it cannot."))
        found.extend(_communication(engine, info))
        if quarantined and info.name in quarantined:
            found.append(_finding(info, "quarantined", "critical", "recovery",
                                  "the watchdog stopped acting after its attempt budget; fix "
                                  "the cause, then wd.acknowledge(name)."))
        if failed_actions is not None:
            mine = failed_actions[failed_actions["container_id"] == info.id]
            if len(mine):
                last = mine.iloc[-1]
                found.append(_finding(info, "action_failed", "warning", "management",
                                      "an action on this container failed; ops.actions() has "
                                      "the error.", action=str(last["action"]),
                                      error=str(last["error"])))
    return sorted(found, key=lambda f: (_ORDER.get(f.severity, 3), f.container, f.kind))

"""Findings of a recorded incident, as a frame: what the rules say of the recorded containers,
and the incidents the action journal shows opskit acted on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime

import pandas as pd

from ..observe.inspection import ContainerInfo
from ..records.event_records import Event
from ..records.findings import Finding
from ..recover.rules import ContainerView, evaluate

__all__ = ["FINDING_COLUMNS", "findings_frame", "findings_from_actions", "rule_findings"]

FINDING_COLUMNS = ["since", "container", "service", "kind", "severity", "failure_class", "hint",
                   "evidence", "key", "container_id", "source"]
_CLASS_OF = {"unhealthy": "communication", "crash_loop": "recovery", "quarantined": "recovery",
             "interrupted_recovery": "recovery", "probe_error": "detection"}


# -- findings ------------------------------------------------------------------------------------


def findings_frame(findings: Iterable[Finding], source: str | Sequence[str] = "rules"
                   ) -> pd.DataFrame:
    """Findings as a frame (:data:`FINDING_COLUMNS`), one row per key, oldest first.

    ``source`` says where each came from (``rules``, ``watchdog``, ``actions``); a key seen
    twice keeps its first row.
    """
    items = list(findings)
    sources = [source] * len(items) if isinstance(source, str) else list(source)
    rows, seen = [], set()
    for finding, origin in zip(items, sources, strict=True):
        if finding.key not in seen:
            seen.add(finding.key)
            rows.append({**finding.to_dict(), "since": finding.since, "source": origin})
    frame = pd.DataFrame(rows, columns=FINDING_COLUMNS)
    frame["since"] = pd.to_datetime(frame["since"], utc=True).astype("datetime64[ns, UTC]")
    for column in ("container", "service", "kind", "severity", "failure_class", "source"):
        frame[column] = frame[column].astype(object).astype("category")
    for column in ("hint", "key", "container_id"):
        frame[column] = frame[column].astype("string")
    frame["evidence"] = frame["evidence"].astype(object)
    return frame.sort_values(["since", "container"], kind="stable", ignore_index=True)


def rule_findings(inspections: pd.DataFrame, events: pd.DataFrame, health: pd.DataFrame,
                  stats: pd.DataFrame, now: datetime) -> list[Finding]:
    """Every detection rule (:func:`opskit.recover.rules.evaluate`) on each inspected container,
    as of ``now``, from its recorded events, probes and stats samples."""

    out: list[Finding] = []
    real = events[events["kind"].astype(str) == "event"]
    for attrs in inspections["attrs"]:
        info = ContainerInfo.from_attrs(attrs)
        mine = real[real["actor_id"].astype(str) == info.id]
        seen = [Event(time_nano=int(e.time_nano), type=str(e.type), action=str(e.action),
                      base_action=str(e.base_action), actor_id=info.id,
                      attributes=e.attributes or {}, detail=str(e.detail), host=str(e.host))
                for e in mine.itertuples(index=False)]
        probes = health[health["container"].astype(str) == info.name].to_dict("records")
        samples = stats[stats["id"].astype(str) == info.id].to_dict("records")
        out.extend(evaluate(ContainerView(info=info, events=seen, probes=probes, stats=samples,
                                          now=now)))
    return out


def findings_from_actions(actions: pd.DataFrame) -> list[Finding]:
    """The incidents opskit acted on, from its action journal: one finding per finding key
    (``container_id:kind:since``), and one ``quarantined`` finding per quarantined container.
    """
    out: dict[str, Finding] = {}
    auto = actions[actions["reason"].astype(str) != "manual"]
    for _, row in auto.iterrows():
        cid, kind, since = _split_key(str(row["finding_key"] or ""))
        if not cid:
            continue
        result, name = str(row["result"]), str(row["container"])
        if result == "quarantined" and f"{cid}:quarantined" not in out:
            out[f"{cid}:quarantined"] = Finding(
                container_id=cid, container=name, service=str(row["service"]),
                kind="quarantined", severity="critical", since=row["ts"].to_pydatetime(warn=False),
                evidence={"after": kind}, failure_class="recovery",
                hint=f"The watchdog stopped acting on '{name}' after its attempt budget: fix "
                "the cause, then acknowledge the quarantine (wd.acknowledge).")
        if row["finding_key"] in out:
            continue
        out[str(row["finding_key"])] = Finding(
            container_id=cid, container=name, service=str(row["service"]), kind=kind,
            severity="critical", since=since, failure_class=_CLASS_OF.get(kind, "management"),
            evidence={"action": str(row["action"]), "result": result},
            hint=f"opskit acted on this ({row['action']}: {result}); the actions table says "
            "what was done.")
    return list(out.values())


def _split_key(key: str) -> tuple[str, str, datetime]:
    match = re.match(r"^([0-9a-f]{12,64}):([a-z_]+):(.+)$", key)
    if not match:
        return "", "", datetime.min
    try:
        return match.group(1), match.group(2), datetime.fromisoformat(match.group(3))
    except ValueError:
        return "", "", datetime.min



"""Reliability figures from the journals: time to detect, time to recover, availability.

Pure functions over the frames opskit already has: the action journal
(:func:`opskit.act.actions.read_actions`) and the event frame
(:func:`opskit.observe.events.events_frame`
or a bundle's events). They work the same on a live engine and on a recorded incident.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..base import labels as L
from ..base.units import parse_time

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["availability", "incidents_by_kind", "recovery_times"]

UP_ACTIONS = frozenset({"start", "unpause"})
DOWN_ACTIONS = frozenset({"die", "stop", "pause", "destroy"})


def recovery_times(actions: pd.DataFrame) -> pd.DataFrame:
    """One row per finished recovery: container, reason, result, time to detect, time to
    recover (seconds; NaN when unknown), attempt.

    Time to detect is from the failure (the finding's ``since``) to the decision to act; time
    to recover is from the failure to the container verified healthy.
    """
    import pandas as pd

    done = actions[(actions["result"].astype(str).isin(["ok", "failed"]))
                   & ~actions["reason"].astype(str).isin(["manual", "chaos"])]
    rows = []
    for _, row in done.iterrows():
        details = row["details"] if isinstance(row["details"], dict) else {}
        failed_at = details.get("failed_at")
        detected = row["detected_at"].timestamp() if pd.notna(row["detected_at"]) else None
        rows.append({
            "ts": row["ts"], "container": str(row["container"]),
            "service": str(row["service"]), "reason": str(row["reason"]),
            "result": str(row["result"]), "attempt": details.get("attempt"),
            "time_to_detect_s": (detected - failed_at) if detected and failed_at else None,
            "time_to_recover_s": details.get("time_to_recover_s"),
        })
    frame = pd.DataFrame(rows, columns=["ts", "container", "service", "reason", "result",
                                        "attempt", "time_to_detect_s", "time_to_recover_s"])
    for col in ("time_to_detect_s", "time_to_recover_s"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return frame


def incidents_by_kind(actions: pd.DataFrame) -> pd.DataFrame:
    """Count of automatic decisions per finding kind and result (``ok``, ``failed``,
    ``skipped``, ``quarantined``, ``handled-by-peer``, ...); people's actions and injected
    faults are not incidents."""
    auto = actions[~actions["reason"].astype(str).isin(["manual", "chaos"])]
    table = auto.groupby([auto["reason"].astype(str), auto["result"].astype(str)]).size()
    return table.unstack(fill_value=0).rename_axis(index="kind", columns="result")


def availability(events: pd.DataFrame, *, since: Any = None, until: Any = None,
                 service: str | None = None) -> pd.DataFrame:
    """Share of a window each service was available, from container events.

    A replica is up from ``start`` (or ``unpause``, or ``health_status: healthy``) until it
    dies, is stopped, paused, destroyed or reported unhealthy; a service is up while at least
    one replica is. The window is ``since``..``until`` (when omitted, from each service's first
    event to the events' end).

    Returns:
        One row per service: window_s, up_s, down_s, availability (0..1), outages.
    """
    import pandas as pd

    ev = events[(events["type"].astype(str) == "container")].sort_values("time_nano")
    start = parse_time(since) or (ev["ts"].min() if len(ev) else None)
    end = parse_time(until) or (ev["ts"].max() if len(ev) else None)
    rows: list[dict[str, Any]] = []
    if start is None or end is None or end <= start:
        return pd.DataFrame(rows, columns=["service", "window_s", "up_s", "down_s",
                                           "availability", "outages"])
    t0, t1 = pd.Timestamp(start).value, pd.Timestamp(end).value
    by_service: dict[str, list[tuple[int, str, bool]]] = {}
    for _, row in ev.iterrows():
        attrs = row["attributes"] if isinstance(row["attributes"], dict) else {}
        svc = attrs.get(L.SERVICE, "")
        if not svc or (service and svc != service):
            continue
        action, detail = str(row["base_action"]), str(row["detail"])
        up: bool | None = None
        if action in UP_ACTIONS or (action == "health_status" and detail == "healthy"):
            up = True
        elif action in DOWN_ACTIONS or (action == "health_status" and detail == "unhealthy"):
            up = False
        if up is not None:
            by_service.setdefault(svc, []).append((int(row["time_nano"]), str(row["actor_id"]),
                                                   up))
    for svc, changes in sorted(by_service.items()):
        if since is None:  # the service's own span, not the other services' before it
            t0 = max(pd.Timestamp(start).value, changes[0][0])
        replicas: dict[str, bool] = {}
        for when, cid, up in changes:  # state at the window's start
            if when <= t0:
                replicas[cid] = up
        was_up, last, up_ns, outages = any(replicas.values()), t0, 0, 0
        for when, cid, up in changes:
            if when <= t0 or when > t1:
                continue
            replicas[cid] = up
            now_up = any(replicas.values())
            if was_up:
                up_ns += when - last
            if was_up and not now_up:
                outages += 1
            was_up, last = now_up, when
        if was_up:
            up_ns += t1 - last
        window = (t1 - t0) / 1e9
        rows.append({"service": svc, "window_s": window, "up_s": up_ns / 1e9,
                     "down_s": window - up_ns / 1e9, "availability": up_ns / (t1 - t0),
                     "outages": outages})
    return pd.DataFrame(rows, columns=["service", "window_s", "up_s", "down_s", "availability",
                                       "outages"])

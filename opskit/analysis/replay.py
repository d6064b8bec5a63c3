"""Replay what-if: other detection and recovery settings against a recorded incident.

    table = opskit.analysis.replay.replay(bundle)     # one row per scenario (or bundle.replay())
    opskit.analysis.replay.replay_figure(table)        # the same as bars

Each :class:`Scenario` is a detector (event-driven, or a poller), a healthcheck (the recorded
one, or interval x retries) and a :class:`~opskit.spec.policy.RecoveryPolicy`. The model is simple
on purpose, and the same for every scenario:

1. **Failures** are the failure starts recorded in the events, per container: a ``die`` with a
   non-zero exit code that no API kill or stop explains (opskit's own restarts send a kill
   first), an OOM kill (an ``oom`` event just before or after its ``die``), and a
   ``health_status: unhealthy`` transition. An unhealthy failure starts at the first failing
   probe of its streak (the health table; else the transition minus the container's interval
   x retries) and ends by itself at the next ``healthy`` transition, or at a crash, if one
   came first (a flap).
2. **Runs.** A container's history is cut into runs at each ``start``. A run that began because
   a failure was left unresolved (a restart, by whoever did it) begins, in a scenario, when
   *that scenario* restarted the container, and its failures keep their uptime; if the
   scenario never restarted it, the run and its failures do not happen. A container whose
   recording ends down after such a run (a crash loop) goes on failing at the same uptime for
   as long as a scenario keeps restarting it, up to the end of the recorded range.
3. **Detection delay** = the healthcheck's delay (unhealthy failures only: the scenario's
   interval x retries, or as recorded: the first failing probe to the transition) plus the
   detector's: event-driven, the overhead measured in the bundle's actions (failure to the
   start of a first attempt: event, lease, evidence); a poller, half its period (expected;
   the worst case, a whole period, is ``worst_detect_s``). A failure that ends by itself
   before it is detected is not detected.
4. **Recovery** follows the policy through :class:`~opskit.spec.policy.RecoveryState`: the first
   action at once, then backoff, a budget per window (halved for a crash loop: 3 starts in
   60 s), and quarantine, after which nothing is restarted. A restart takes the times measured
   in the bundle's actions (median ``act_s`` until the container runs again, median duration
   until verified healthy). An attempt fails when the container fails again before it is
   verified. opskit's scenarios treat unhealthy spells less than 60 s apart as one incident, as
   its rules do: after a restart that held, later flaps of the chain are left alone.
5. **Downtime** of a container is the union of [failure start, verified after the restart, or
   ended by itself, or end of the range]; a scenario's downtime is the sum over containers.

What it does not model: restarts that would have prevented a failure, load or dependencies
between services, the engine's own restart policies, and people acting by hand.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..base import labels as L
from ..figures.traces import empty_figure, finish
from ..records.findings import Finding
from ..spec.policy import RecoveryPolicy, RecoveryState

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

__all__ = ["FAILURE_COLUMNS", "NO_BUDGET", "SUMMARY_COLUMNS", "Recording", "Scenario", "Timing",
           "default_scenarios", "failure_starts", "measure_timing", "replay", "replay_failures",
           "replay_figure"]

NO_BUDGET = 10**9
FLAP_WINDOW = 60.0
CRASH_LOOP = (3, 60.0)  # starts within seconds, as RuleConfig's defaults
STOP_WINDOW = 60.0
AFTER_DIE = 5.0  # seconds after a die in which its stop, destroy or oom event may come
FAILURE_COLUMNS = ["container_id", "container", "service", "kind", "onset", "at", "ends_at",
                   "exit_code", "run", "run_start", "after_failure", "hc_delay_s", "left_down"]
SUMMARY_COLUMNS = ["scenario", "failures", "detected", "restarts", "mean_detect_s",
                   "p95_detect_s", "worst_detect_s", "downtime_s", "quarantined", "description"]
_TIMES = ("onset", "at", "ends_at", "run_start")


@dataclass(frozen=True)
class Scenario:
    """One what-if setting.

    Args:
        name: shown in the table.
        policy: the recovery policy; None for the recorded one (opskit's default if the
            bundle has none).
        poll: a poller's period in seconds; None for event-driven detection.
        probe: the healthcheck as ``(interval seconds, retries)``; None for the recorded one.
        max_attempts: replaces the policy's budget (``"opskit, budget 3"``).
        incidents: unhealthy spells less than 60 s apart are one incident (opskit's rules).
        description: one line on what the scenario stands for.
    """

    name: str
    policy: RecoveryPolicy | None = None
    poll: float | None = None
    probe: tuple[float, int] | None = None
    max_attempts: int | None = None
    incidents: bool = True
    description: str = ""


def default_scenarios() -> list[Scenario]:
    """The five scenarios of :func:`replay` when none are given."""
    no_backoff = RecoveryPolicy(backoff_initial=0, backoff_cap=0, jitter=0,
                                max_attempts=NO_BUDGET)
    kubernetes = RecoveryPolicy(backoff_initial=10, backoff_factor=2, backoff_cap=300, jitter=0,
                                max_attempts=NO_BUDGET, reset_after=600)
    return [
        Scenario("recorded (opskit as configured)",
                 description="event-driven, the recorded healthcheck and recovery policy"),
        Scenario("healthcheck every 5 s, 3 retries", probe=(5.0, 3),
                 description="opskit as recorded, with a slower healthcheck"),
        Scenario("autoheal: poll every 5 s, no backoff, no budget", policy=no_backoff, poll=5.0,
                 incidents=False, description="docker-autoheal's loop: polls, restarts at "
                 "once, never gives up"),
        Scenario("kubernetes-like: probe 10 s x 3, backoff 10 s doubling to 300 s",
                 policy=kubernetes, poll=1.0, probe=(10.0, 3), incidents=False,
                 description="kubelet: 1 s relist, liveness probe 10 s x 3, CrashLoopBackOff"),
        Scenario("opskit, budget 3", max_attempts=3,
                 description="opskit as recorded, at most 3 attempts per window"),
    ]


@dataclass(frozen=True)
class Timing:
    """Durations measured in a bundle's actions (medians; defaults when none were recorded).

    Attributes:
        detect_s: failure to the start of a first recovery attempt (event, lease, evidence).
        act_s: start of the attempt to the container running again.
        recover_s: start of the attempt to the container verified healthy.
        measured: how many actions the figures come from.
    """

    detect_s: float = 0.1
    act_s: float = 0.5
    recover_s: float = 1.5
    measured: int = 0


def measure_timing(actions: pd.DataFrame | None) -> Timing:
    """:class:`Timing` from an action journal frame (automatic restarts and recreates)."""
    import numpy as np

    default = Timing()
    if actions is None or actions.empty:
        return default
    auto = actions[(actions["reason"].astype(str) != "manual")
                   & actions["action"].astype(str).isin(["restart", "recreate"])
                   & actions["result"].astype(str).isin(["ok", "failed"])]
    detect, act, recover = [], [], []
    for _, row in auto.iterrows():
        details = row["details"] if isinstance(row["details"], Mapping) else {}
        started = row["ts"].timestamp() - float(row["duration_s"] or 0.0)
        if details.get("attempt") == 1 and details.get("failed_at"):
            detect.append(started - float(details["failed_at"]))
        if str(row["result"]) == "ok":
            act.append(float(details.get("act_s") or 0.0) or math.nan)
            recover.append(float(row["duration_s"] or 0.0))

    def median(values: list[float], fallback: float) -> float:
        clean = [v for v in values if v >= 0 and not math.isnan(v)]
        return float(np.median(clean)) if clean else fallback

    return Timing(median(detect, default.detect_s), median(act, default.act_s),
                  median(recover, default.recover_s), len(auto))


@dataclass(frozen=True)
class Recording:
    """What a replay reads: a bundle's tables, or synthetic frames in tests.

    Args:
        events: an events frame; health: probes; actions: the action journal; inspections:
            ``docker inspect`` payloads (column ``attrs``), for each healthcheck's settings.
        since, until: the range (UTC).
        policy: the recovery policy in force (opskit's default when None).
    """

    events: pd.DataFrame
    since: datetime
    until: datetime
    health: pd.DataFrame | None = None
    actions: pd.DataFrame | None = None
    inspections: pd.DataFrame | None = None
    policy: RecoveryPolicy | None = None

    @classmethod
    def of(cls, source: Any) -> Recording:
        """A recording from a :class:`~opskit.analysis.bundle.Bundle` (or itself)."""
        if isinstance(source, Recording):
            return source
        policy = (source.manifest or {}).get("policy")
        return cls(events=source.events, since=source.since, until=source.until,
                   health=source.health, actions=source.actions,
                   inspections=source.inspections,
                   policy=RecoveryPolicy.from_dict(policy) if policy else None)


# -- failures -------------------------------------------------------------------------------------


def _healthchecks(inspections: pd.DataFrame | None) -> dict[str, float]:
    """interval x retries (seconds) of each inspected container's healthcheck."""
    out = {}
    for attrs in [] if inspections is None else inspections["attrs"]:
        check = ((attrs or {}).get("Config") or {}).get("Healthcheck") or {}
        if check.get("Test") and check["Test"][0] != "NONE":
            interval = (check.get("Interval") or 30_000_000_000) / 1e9
            out[str(attrs.get("Id"))] = interval * (check.get("Retries") or 3)
    return out


def _probes(health: pd.DataFrame | None) -> dict[str, list[tuple[float, str]]]:
    out: dict[str, list[tuple[float, str]]] = {}
    if health is None or health.empty:
        return out
    for name, ts, outcome in zip(health["container"].astype(str), health["ts"],
                                 health["outcome"].astype(str), strict=True):
        out.setdefault(name, []).append((ts.timestamp(), outcome))
    return {name: sorted(rows) for name, rows in out.items()}


def _onset(probes: list[tuple[float, str]], at: float, run_start: float | None,
           fallback: float) -> float:
    """The first failing probe of the streak that ended in the transition at ``at``."""
    streak = [ts for ts, outcome in probes if ts <= at and (run_start is None or ts >= run_start)]
    outcomes = dict(probes)
    first = None
    for ts in reversed(streak):
        if outcomes[ts] != "failed":
            break
        first = ts
    return first if first is not None else at - fallback


def failure_starts(events: pd.DataFrame, health: pd.DataFrame | None = None,
                   inspections: pd.DataFrame | None = None) -> pd.DataFrame:
    """The failures in an events frame, one row each (step 1 of the module's model).

    Columns: container_id, container, service, kind (``exited_nonzero``, ``oom_killed``,
    ``unhealthy``), onset (the failure's start), at (its event), ends_at (an unhealthy spell's
    own end: healthy again, or a crash; NaT otherwise), exit_code, run (the container's run
    number) and run_start, after_failure (the run began with a failure unresolved),
    hc_delay_s (onset to the unhealthy transition), left_down (nothing started or healed it
    afterwards).
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    if not events.empty:
        ev = events[(events["kind"].astype(str) == "event")
                    & (events["type"].astype(str) == "container")].sort_values(
            "time_nano", kind="stable")
        checks, probes = _healthchecks(inspections), _probes(health)
        for cid, group in ev.groupby(ev["actor_id"].astype(str), sort=False):
            rows.extend(_container_failures(str(cid), group, probes, checks))
    frame = pd.DataFrame(rows, columns=FAILURE_COLUMNS)
    for column in _TIMES:
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True).astype(
            "datetime64[ns, UTC]")
    return frame.astype({"run": "int64", "after_failure": "bool", "left_down": "bool",
                         "hc_delay_s": "float64", "exit_code": "Int64"})


def _container_failures(cid: str, group: pd.DataFrame, probes: Mapping[str, Any],
                        checks: Mapping[str, float]) -> list[dict[str, Any]]:
    import pandas as pd

    columns = ("time_nano", "base_action", "detail", "exit_code", "attributes")
    items = [(int(t) / 1e9, str(b), str(d), None if pd.isna(c) else int(c),
              a if isinstance(a, Mapping) else {})
             for t, b, d, c, a in zip(*(group[c] for c in columns), strict=True)]
    name = next((a["name"] for *_, a in reversed(items) if a.get("name")), cid[:12])
    service = next((a[L.SERVICE] for *_, a in items if a.get(L.SERVICE)), "")
    out: list[dict[str, Any]] = []
    run, run_start, after_failure = 0, None, False
    kill_at = oom_at = None
    spell: dict[str, Any] | None = None

    def add(kind: str, at: float, code: Any = None) -> None:
        nonlocal spell
        onset = at
        if kind == "unhealthy":
            onset = _onset(probes.get(name, []), at, run_start, checks.get(cid, 0.0))
        elif spell is not None:
            spell["ends_at"], spell = at, None  # a crash ends the unhealthy spell
        row = {"container_id": cid, "container": name, "service": service, "kind": kind,
               "onset": onset, "at": at, "ends_at": None, "exit_code": code, "run": run,
               "run_start": run_start, "after_failure": after_failure,
               "hc_delay_s": at - onset, "left_down": True}
        out.append(row)
        spell = row if kind == "unhealthy" else spell

    for i, (t, base, detail, code, _) in enumerate(items):
        if base == "start":
            unresolved = bool(out) and out[-1]["left_down"]
            if out:
                out[-1]["left_down"] = False
            run, run_start, after_failure = run + 1, t, unresolved
            kill_at = oom_at = spell = None
        elif base == "kill":
            kill_at = t
        elif base == "oom":
            oom_at = t
        elif base == "die":
            after = []  # what followed, up to the next start or die, within a few seconds
            for when, later, *_ in items[i + 1:]:
                if later in ("start", "die") or when - t > AFTER_DIE:
                    break
                after.append(later)
            asked = (kill_at is not None and t - kill_at <= STOP_WINDOW) or bool(
                {"stop", "destroy"} & set(after))
            if oom_at is not None or "oom" in after:  # the oom event may trail the die
                add("oom_killed", min(oom_at or t, t), code)
            elif not asked and code:
                add("exited_nonzero", t, code)
            kill_at = oom_at = None
        elif base == "health_status" and detail == "unhealthy" and spell is None:
            add("unhealthy", t)
        elif base == "health_status" and detail == "healthy" and spell is not None:
            spell["ends_at"], spell["left_down"], spell = t, False, None
    return out


# -- the simulation -------------------------------------------------------------------------------


@dataclass
class _Run:
    """One container under one scenario, as the simulation goes."""

    state: RecoveryState
    back_at: float | None = None  # when this scenario's last restart had it running again
    shift: dict[int, float | None] = field(default_factory=dict)
    starts: list[float] = field(default_factory=list)
    healthy_from: float | None = None
    chain_end: float | None = None  # end of the last unhealthy spell of a held incident
    quarantined: bool = False


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _policy(scenario: Scenario, recorded: RecoveryPolicy | None) -> RecoveryPolicy:
    policy = scenario.policy or recorded or RecoveryPolicy()
    changes: dict[str, Any] = {"jitter": 0.0, "dry_run": False}
    # the fast budget is what a replay weighs: it stops at quarantine, as if nobody
    # acknowledged and no slow retry ran (those are not simulated)
    changes["quarantine_retry"] = None
    if scenario.max_attempts is not None:
        changes["max_attempts"] = scenario.max_attempts
    return dataclasses.replace(policy, **changes)


def _simulate(rows: list[dict[str, Any]], scenario: Scenario, policy: RecoveryPolicy,
              timing: Timing, end: float) -> list[dict[str, Any]]:
    """Play one container's failures (rows of :func:`failure_starts`, in order) through a
    scenario; one outcome per failure that happens in it."""
    sim = _Run(RecoveryState(policy, seed=0))
    last_run = [r for r in rows if r["run"] == rows[-1]["run"]] if rows else []
    loops = bool(last_run) and last_run[0]["after_failure"] and rows[-1]["left_down"]
    queue, outcomes, extra = list(rows), [], 0
    while queue or (loops and sim.back_at is not None and not sim.quarantined and extra < 10_000):
        if not queue:  # a crash loop goes on as it was recorded
            extra += 1
            queue = [dict(r, run=r["run"] + extra * 1_000_000) for r in last_run]
        row = queue.pop(0)
        if row["run"] not in sim.shift:
            if row["after_failure"]:
                sim.shift[row["run"]] = (None if sim.back_at is None or row["run_start"] is None
                                         else sim.back_at - row["run_start"])
                sim.back_at = None
            else:  # a run nobody's recovery began: it starts when it did
                sim.shift[row["run"]] = 0.0
                if row["run_start"] is not None:
                    sim.starts.append(row["run_start"])
        shift = sim.shift[row["run"]]
        if shift is None or row["onset"] + shift >= end:
            continue
        following = next((r for r in queue if r["run"] != row["run"]),
                         last_run[0] if loops else None)
        outcome = _one(sim, row, shift, following, scenario, timing, end)
        sim.healthy_from = outcome["down_until"] if outcome["down_until"] < end else None
        outcomes.append(outcome)
    return outcomes


def _one(sim: _Run, row: dict[str, Any], shift: float, following: dict[str, Any] | None,
         scenario: Scenario, timing: Timing, end: float) -> dict[str, Any]:
    onset = row["onset"] + shift
    ends = row["ends_at"] + shift if row["ends_at"] is not None else None
    kind = row["kind"]
    starts, window = CRASH_LOOP
    if kind != "unhealthy" and sum(onset - window <= s <= onset for s in sim.starts) >= starts:
        kind = "crash_loop"
    hc = 0.0
    if kind == "unhealthy":
        hc = scenario.probe[0] * scenario.probe[1] if scenario.probe else row["hc_delay_s"]
    delay = hc + (scenario.poll / 2 if scenario.poll else timing.detect_s)
    worst = hc + (scenario.poll if scenario.poll else timing.detect_s)
    out = {"scenario": scenario.name, "container": row["container"], "kind": kind,
           "onset": onset, "detected": False, "detect_s": math.nan, "worst_detect_s": math.nan,
           "restarted": False, "action_at": math.nan, "down_until": ends or end,
           "quarantined": sim.quarantined}
    detected_at = onset + delay
    if detected_at >= (ends or end):
        return out  # over, or out of the range, before anyone noticed
    out.update(detected=True, detect_s=delay, worst_detect_s=worst)
    if sim.healthy_from is not None:
        sim.state.record_healthy(_at(sim.healthy_from))
        sim.state.record_healthy(_at(onset))
    chained = (scenario.incidents and kind == "unhealthy" and sim.chain_end is not None
               and onset - sim.chain_end <= FLAP_WINDOW)
    if chained:
        sim.chain_end = ends or end
        return out  # the same incident as a flap before, whose restart held: left alone
    finding = Finding(container_id=row["container_id"], container=row["container"],
                      service=row["service"], kind=kind, severity="critical", since=_at(onset),
                      evidence={}, hint="", failure_class="management")
    decision = sim.state.decide(finding, _at(detected_at))
    act_at = detected_at + decision.delay
    if not decision.act or act_at >= (ends or end):
        sim.quarantined = sim.quarantined or sim.state.quarantined
        out["quarantined"] = sim.quarantined
        return out
    sim.back_at, recovered = act_at + timing.act_s, act_at + timing.recover_s
    sim.starts.append(sim.back_at)
    again = following is not None and following["after_failure"] and \
        following["kind"] != "unhealthy" and following["run_start"] is not None and \
        sim.back_at + following["onset"] - following["run_start"] < recovered
    sim.state.record_attempt(_at(act_at), not again)
    sim.quarantined = sim.state.quarantined
    sim.chain_end = (ends or recovered) if kind == "unhealthy" and not again else None
    out.update(restarted=True, action_at=act_at, quarantined=sim.quarantined,
               down_until=min(recovered, ends) if ends is not None else recovered)
    return out


def _union(spans: Iterable[tuple[float, float]], start: float, end: float) -> float:
    total, reach = 0.0, start
    for lo, hi in sorted(spans):
        lo, hi = max(lo, reach), min(hi, end)
        if hi > lo:
            total, reach = total + hi - lo, hi
    return total


def replay_failures(source: Any, scenarios: Sequence[Scenario] | None = None) -> pd.DataFrame:
    """Each failure under each scenario: scenario, container, kind, onset, detected,
    detect_s, worst_detect_s, restarted, action_at, down_until (UTC), quarantined.

    Args:
        source: a :class:`~opskit.analysis.bundle.Bundle` or a :class:`Recording`.
        scenarios: the scenarios (:func:`default_scenarios` when None).
    """
    import pandas as pd

    rec = Recording.of(source)
    failures = failure_starts(rec.events, rec.health, rec.inspections)
    timing, end = measure_timing(rec.actions), rec.until.timestamp()
    per_container = _rows_by_container(failures)
    outcomes = []
    for scenario in scenarios or default_scenarios():
        policy = _policy(scenario, rec.policy)
        for rows in per_container:
            outcomes.extend(_simulate(rows, scenario, policy, timing, end))
    frame = pd.DataFrame(outcomes, columns=["scenario", "container", "kind", "onset",
                                            "detected", "detect_s", "worst_detect_s",
                                            "restarted", "action_at", "down_until",
                                            "quarantined"])
    for column in ("onset", "action_at", "down_until"):
        frame[column] = pd.to_datetime(frame[column], unit="s", utc=True).astype(
            "datetime64[ns, UTC]")
    return frame.astype({"detected": "bool", "restarted": "bool", "quarantined": "bool"})


def _rows_by_container(failures: pd.DataFrame) -> list[list[dict[str, Any]]]:
    import pandas as pd

    plain = failures.copy()
    for column in _TIMES:
        plain[column] = [None if pd.isna(v) else v.timestamp() for v in plain[column]]
    out: dict[str, list[dict[str, Any]]] = {}
    for row in plain.to_dict("records"):
        for column in _TIMES:  # a column with gaps comes back as floats with NaN
            row[column] = None if pd.isna(row[column]) else float(row[column])
        out.setdefault(str(row["container_id"]), []).append(row)
    return list(out.values())


def replay(source: Any, scenarios: Sequence[Scenario] | None = None) -> pd.DataFrame:
    """What each scenario would have given on a recorded incident (see the module's model).

    Args:
        source: a :class:`~opskit.analysis.bundle.Bundle` or a :class:`Recording`.
        scenarios: the scenarios; :func:`default_scenarios` when None.

    Returns:
        One row per scenario: scenario, failures, detected, restarts, mean_detect_s,
        p95_detect_s, worst_detect_s (seconds, NaN when nothing was detected), downtime_s,
        quarantined (containers), description.
    """
    import numpy as np
    import pandas as pd

    rec = Recording.of(source)
    chosen = list(scenarios or default_scenarios())
    details = replay_failures(rec, chosen)
    start, end = rec.since.timestamp(), rec.until.timestamp()
    rows = []
    for scenario in chosen:
        mine = details[details["scenario"] == scenario.name]
        seen = mine.loc[mine["detected"], "detect_s"].to_numpy(dtype=float)
        downtime = 0.0
        for _, spans in mine.groupby("container"):
            downtime += _union(zip((t.timestamp() for t in spans["onset"]),
                                   (t.timestamp() for t in spans["down_until"]), strict=True),
                               start, end)
        quarantined = mine.groupby("container")["quarantined"].any().sum() if len(mine) else 0
        rows.append({
            "scenario": scenario.name, "failures": len(mine), "detected": len(seen),
            "restarts": int(mine["restarted"].sum()),
            "mean_detect_s": float(seen.mean()) if len(seen) else math.nan,
            "p95_detect_s": float(np.percentile(seen, 95)) if len(seen) else math.nan,
            "worst_detect_s": float(mine["worst_detect_s"].max()) if len(seen) else math.nan,
            "downtime_s": round(downtime, 3), "quarantined": int(quarantined),
            "description": scenario.description})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def replay_figure(table: pd.DataFrame, *, title: str = "What-if replay") -> go.Figure:
    """Bars of a :func:`replay` table: detection delay (mean and p95), downtime, restarts
    (with the containers quarantined written on the bars)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots


    if table.empty:
        return empty_figure(title)
    names = list(table["scenario"])
    fig = make_subplots(rows=1, cols=3, subplot_titles=("detection delay (s)", "downtime (s)",
                                                        "restarts"))
    fig.add_trace(go.Bar(x=names, y=table["mean_detect_s"], name="mean detection",
                         marker_color="#1f77b4"), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=table["p95_detect_s"], name="p95 detection",
                         marker_color="#aec7e8"), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=table["downtime_s"], name="downtime",
                         marker_color="#d62728"), row=1, col=2)
    fig.add_trace(go.Bar(x=names, y=table["restarts"], name="restarts", marker_color="#2ca02c",
                         text=[f"{q} quarantined" if q else "" for q in table["quarantined"]],
                         textposition="outside"), row=1, col=3)
    fig.update_xaxes(tickangle=30)
    fig.update_layout(barmode="group")
    return finish(fig, title, height=520)

"""Replay what-if (no engine): the failure model on synthetic events, and the sample bundle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from opskit.analysis.bundle import open_bundle
from opskit.analysis.replay import (
    SUMMARY_COLUMNS,
    Recording,
    Scenario,
    Timing,
    default_scenarios,
    failure_starts,
    measure_timing,
    replay,
    replay_failures,
    replay_figure,
)
from opskit.base import labels as L
from opskit.observe.events import records_frame
from opskit.observe.health import health_frame
from opskit.records.journal_file import Record
from opskit.spec.policy import RecoveryPolicy
from tests.support.paths import SAMPLE

T0 = datetime(2026, 11, 26, 12, tzinfo=UTC)
CID = "c" * 64
POLICY = RecoveryPolicy(backoff_initial=1, jitter=0, max_attempts=5, window="10m")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def events(*items: tuple[float, str] | tuple[float, str, dict[str, str]]) -> pd.DataFrame:
    """An events frame of one container from (seconds, action[, attributes]) tuples."""
    records = []
    for item in items:
        seconds, action, extra = (*item, {})[:3]
        attributes = {"name": "svc-1", L.SERVICE: "svc", **extra}
        records.append(Record(time_nano=int(at(seconds).timestamp() * 1e9), type="container",
                              action=action, actor_id=CID, name="svc-1", host="h",
                              kind="event", attributes=attributes))
    return records_frame(records)


def recording(frame: pd.DataFrame, seconds: float = 300, **kw: Any) -> Recording:
    return Recording(events=frame, since=T0, until=at(seconds), policy=POLICY, **kw)


def row(table: pd.DataFrame, name: str) -> pd.Series:
    return table.set_index("scenario").loc[name]


AUTOHEAL = Scenario("autoheal", policy=RecoveryPolicy(backoff_initial=0, backoff_cap=0,
                                                      jitter=0, max_attempts=10**9),
                    poll=5.0, incidents=False)
EVENTS = Scenario("events")
BUDGET_3 = Scenario("budget 3", max_attempts=3)


def crash_loop() -> pd.DataFrame:
    """Crashes 30 s after each start; restarted twice, then left down."""
    return events((0, "start"), (30, "die", {"exitCode": "2"}), (35, "start"),
                  (35.1, "restart"), (65, "die", {"exitCode": "2"}), (70, "start"),
                  (70.1, "restart"), (100, "die", {"exitCode": "2"}))


def test_failure_starts_tell_crashes_from_asked_stops_and_see_a_trailing_oom() -> None:
    frame = events((0, "start"), (5, "kill", {"signal": "15"}), (5.1, "die", {"exitCode": "0"}),
                   (5.2, "stop"), (6, "start"), (6.1, "restart"),
                   (9, "die", {"exitCode": "137"}), (9.3, "oom"), (12, "start"),
                   (20, "die", {"exitCode": "3"}))
    found = failure_starts(frame)
    assert list(found["kind"]) == ["oom_killed", "exited_nonzero"]
    assert list(found["run"]) == [2, 3] and list(found["after_failure"]) == [False, True]
    assert list(found["left_down"]) == [False, True]
    assert found["onset"].iloc[0] == pd.Timestamp(at(9))


def test_unhealthy_starts_at_its_first_failing_probe_and_heals() -> None:
    frame = events((0, "start"), (2, "health_status: healthy"),
                   (20, "health_status: unhealthy"), (23, "health_status: healthy"))
    probes = health_frame([
        {"ts": at(t), "end": at(t + 0.1), "container": "svc-1", "exit_code": code,
         "outcome": outcome, "output": ""}
        for t, code, outcome in ((17, 0, "ok"), (18, 1, "failed"), (19, 1, "failed"))])
    found = failure_starts(frame, probes)
    assert found["onset"].iloc[0] == pd.Timestamp(at(18)) and found["hc_delay_s"].iloc[0] == 2
    assert found["ends_at"].iloc[0] == pd.Timestamp(at(23))
    table = replay(recording(frame, 60, health=probes),
                   [EVENTS, Scenario("slow probe", probe=(5.0, 3))])
    assert row(table, "events")["detected"] == 1 and row(table, "events")["restarts"] == 1
    assert row(table, "slow probe")["detected"] == 0, "healed before 15 s of probes"
    assert row(table, "slow probe")["downtime_s"] == pytest.approx(5.0)


def test_a_poller_detects_later_than_events() -> None:
    frame = events((0, "create"), (1, "start"), (10, "die", {"exitCode": "3"}))
    table = replay(recording(frame, 120), [EVENTS, AUTOHEAL])
    assert list(table.columns) == SUMMARY_COLUMNS
    events_row, poll_row = row(table, "events"), row(table, "autoheal")
    assert poll_row["mean_detect_s"] == 2.5 and poll_row["worst_detect_s"] == 5.0
    assert events_row["mean_detect_s"] == Timing().detect_s < poll_row["mean_detect_s"]
    assert poll_row["downtime_s"] > events_row["downtime_s"]
    assert events_row["downtime_s"] == pytest.approx(Timing().detect_s + Timing().recover_s)


def test_a_budget_of_three_stops_after_three_restarts() -> None:
    details = replay_failures(recording(crash_loop()), [BUDGET_3, AUTOHEAL])
    budget = details[details["scenario"] == "budget 3"].reset_index(drop=True)
    assert int(budget["restarted"].sum()) == 3
    first = budget.index[budget["quarantined"]][0]
    assert not budget.loc[first:, "restarted"].any(), "nothing restarted once quarantined"
    assert budget["down_until"].iloc[-1] == pd.Timestamp(at(300)), "down to the end"
    assert len(budget) == 4, "a crash loop goes on as recorded: 3 restarts, 4 failures"
    table = replay(recording(crash_loop()), [BUDGET_3, AUTOHEAL])
    assert row(table, "budget 3")["quarantined"] == 1 and row(table, "autoheal")["quarantined"] == 0
    assert row(table, "autoheal")["restarts"] > 3
    assert row(table, "autoheal")["downtime_s"] < row(table, "budget 3")["downtime_s"]


def test_quarantine_stops_restarts_and_a_crash_loop_gets_half_the_budget() -> None:
    quick = events((0, "start"), (1, "die", {"exitCode": "2"}), (2, "start"), (2.1, "restart"),
                   (3, "die", {"exitCode": "2"}), (5, "start"), (5.1, "restart"),
                   (6, "die", {"exitCode": "2"}))
    details = replay_failures(recording(quick, 120), [EVENTS])
    assert list(details["kind"])[-1] == "crash_loop" and details["quarantined"].iloc[-1]
    assert int(details["restarted"].sum()) == -(-POLICY.max_attempts // 2)
    assert not details.loc[details["quarantined"], "restarted"].any()


def test_timing_is_measured_from_the_actions() -> None:
    done = pd.Timestamp(at(12))
    actions = pd.DataFrame({
        "ts": [done, done], "action": ["restart", "restart"], "reason": ["unhealthy", "manual"],
        "result": ["ok", "ok"], "duration_s": [2.0, 9.0],
        "details": [{"attempt": 1, "failed_at": at(9).timestamp(), "act_s": 0.4}, {}]})
    timing = measure_timing(actions)
    assert timing == Timing(detect_s=pytest.approx(1.0), act_s=0.4, recover_s=2.0, measured=1)
    assert measure_timing(None) == Timing()


def test_the_figure_has_the_three_measures() -> None:
    table = replay(recording(crash_loop()), default_scenarios())
    figure = replay_figure(table)
    assert len(figure.data) == 4 and figure.layout.title.text == "What-if replay"
    assert replay_figure(table.iloc[:0]).layout.annotations[0].text == "no data"


def test_the_sample_incident_replays() -> None:
    if not SAMPLE.exists():
        pytest.skip("no sample bundle (scripts/record_sample.py makes it)")
    bundle = open_bundle(SAMPLE)
    table = bundle.replay()
    assert list(table["scenario"]) == [s.name for s in default_scenarios()]
    recorded = row(table, "recorded (opskit as configured)")
    autoheal = row(table, "autoheal: poll every 5 s, no backoff, no budget")
    assert autoheal["mean_detect_s"] > recorded["mean_detect_s"]
    assert autoheal["quarantined"] == 0 and recorded["quarantined"] >= 1
    acted = bundle.actions[bundle.actions["action"].astype(str).eq("restart")
                           & bundle.actions["result"].astype(str).isin(["ok", "failed"])]
    assert abs(recorded["restarts"] - len(acted)) <= 1, "the model replays what happened"
    quarantined = set(bundle.actions.loc[bundle.actions["result"].astype(str) == "quarantined",
                                         "container"].astype(str))
    assert recorded["quarantined"] == len(quarantined)
    assert len(bundle.replay_figure().data) == 4

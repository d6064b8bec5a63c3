"""Tests of opskit.recover.rules and opskit.records.findings on recorded engine sequences and
hand-built cases.

``tests/payloads/sequences/<case>.json`` were recorded once from dockerd 20.10.24 (API 1.41): the
events the engine sent for the case's container (label filter), the steps taken, and the final
``docker inspect`` payload with Env values replaced by ``***``; some add inspect snapshots,
health probes or raw stats samples. No engine is needed here.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest

from opskit.base.errors import InvalidSpec
from opskit.observe.health import probe_outcome
from opskit.observe.inspection import ContainerInfo, parse_engine_time
from opskit.records.event_records import Event, parse_event
from opskit.records.findings import Finding
from opskit.records.stats_calc import StatsRow, stats_row
from opskit.recover import rules
from opskit.recover.rules import (
    ContainerView,
    RuleConfig,
    engine_restarting,
    evaluate,
    intentional_stop,
)
from tests.support.paths import PAYLOADS

SEQUENCES = PAYLOADS / "sequences"
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@cache
def load(case: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SEQUENCES / f"{case}.json").read_text())
    return data


def recorded(case: str, *, until_ns: int | None = None, inspect: dict[str, Any] | None = None,
             now: datetime | None = None, **kw: Any) -> ContainerView:
    """A view of a recorded case: its events (up to ``until_ns``) and its final inspect."""
    data = load(case)
    events = [parse_event(e) for e in data["events"]
              if until_ns is None or e["timeNano"] <= until_ns]
    last = events[-1].ts
    return ContainerView(info=ContainerInfo.from_attrs(inspect or data["inspect"]),
                         events=events, now=now or last + timedelta(seconds=1), **kw)


def kinds(findings: Sequence[Finding]) -> list[str]:
    return [f.kind for f in findings]


def lifecycle(case: str) -> list[str]:
    return [e["Action"] + (f" {e['Actor']['Attributes']['exitCode']}"
                           if e["Action"] == "die" else "")
            + (f" {e['Actor']['Attributes']['signal']}" if e["Action"] == "kill" else "")
            for e in load(case)["events"] if not e["Action"].startswith(("exec_", "health"))]


# -- what the engine sends ------------------------------------------------------------------


@pytest.mark.parametrize(("case", "actions"), [
    ("api_stop", ["create", "start", "kill 15", "die 0", "stop"]),
    ("api_kill", ["create", "start", "kill 9", "die 137"]),
    ("api_restart", ["create", "start", "kill 15", "die 0", "stop", "start", "restart"]),
    ("crash", ["create", "start", "die 3"]),
    ("host_kill9", ["create", "start", "die 137"]),
    ("oom", ["create", "start", "oom", "die 137"]),
    ("restart_policy", ["create"] + ["start", "die 3"] * 5),
    ("api_restart_crasher", ["create", "start", "die 3"] + ["start", "restart", "die 3"] * 3),
    ("pause", ["create", "start", "pause", "unpause"]),
])
def test_recorded_lifecycle_sequences(case: str, actions: list[str]) -> None:
    assert lifecycle(case) == actions


def test_recorded_facts_the_rules_rely_on() -> None:
    # A paused container reads "unhealthy" with no health_status event; a policy restart sets
    # State "restarting"; an API restart resets RestartCount; a probe that cannot run says -1.
    paused = load("pause")["snapshots"][0]["inspect"]["State"]
    assert (paused["Status"], paused["Health"]["Status"]) == ("paused", "unhealthy")
    assert "health_status: unhealthy" not in [e["Action"] for e in load("pause")["events"]]
    assert {s["status"] for s in load("restart_policy")["snapshots"]} == {
        "running", "restarting", "exited"}
    assert load("api_restart_crasher")["inspect"]["RestartCount"] == 0
    log = load("probe_missing")["inspect"]["State"]["Health"]["Log"]
    assert {p["ExitCode"] for p in log} == {-1}
    assert {probe_outcome(p["ExitCode"], p["Output"]) for p in log} == {"error"}


# -- stops, crashes and OOM -----------------------------------------------------------------


@pytest.mark.parametrize(("case", "expected"), [
    ("api_stop", True), ("api_kill", True), ("api_restart", True), ("crash", False),
    ("host_kill9", False), ("oom", False), ("restart_policy", False)])
def test_intentional_stop(case: str, expected: bool) -> None:
    assert intentional_stop(recorded(case)) is expected


@pytest.mark.parametrize("case", ["api_stop", "api_kill"])
def test_api_stop_and_kill_are_not_failures(case: str) -> None:
    assert kinds(evaluate(recorded(case), RuleConfig(expect_running=True))) == []


def test_host_kill9_is_a_crash() -> None:
    [found] = evaluate(recorded("host_kill9"))
    assert (found.kind, found.severity, found.failure_class) == (
        "exited_nonzero", "critical", "management")  # it had been healthy: not deployment
    assert (found.evidence["exit_code"], found.evidence["signal"]) == (137, "SIGKILL")
    assert found.since == ContainerInfo.from_attrs(load("host_kill9")["inspect"]).finished_at


def test_crash_on_first_run_is_a_deployment_failure() -> None:
    [found] = evaluate(recorded("crash"))
    assert (found.kind, found.failure_class, found.evidence["exit_code"]) == (
        "exited_nonzero", "deployment", 3)
    assert found.evidence["signal"] is None and found.evidence["die_seen"] is True


def test_oom_is_classified_with_limit_and_last_sample() -> None:
    data = load("oom")
    stats = [stats_row(p) for p in data["stats"]]
    [found] = evaluate(recorded("oom", stats=stats))
    assert (found.kind, found.severity) == ("oom_killed", "critical")
    ev = found.evidence
    assert (ev["exit_code"], ev["oom_killed"], ev["memory_limit"]) == (137, True, 16 * 2**20)
    assert ev["oom_event_at"] < ev["die_at"]
    assert ev["last_stats"]["mem_limit"] == 16 * 2**20
    assert ev["last_stats"]["ts"] == stats[-1]["ts"].isoformat()


def test_exited_zero_only_when_expected_to_run() -> None:
    data = json.loads(json.dumps(load("crash")))
    data["inspect"]["State"]["ExitCode"] = 0
    for e in data["events"]:
        if e["Action"] == "die":
            e["Actor"]["Attributes"]["exitCode"] = "0"
    events = [parse_event(e) for e in data["events"]]
    view = ContainerView(info=ContainerInfo.from_attrs(data["inspect"]), events=events,
                         now=events[-1].ts + timedelta(seconds=1))
    assert kinds(evaluate(view)) == []
    [found] = evaluate(view, RuleConfig(expect_running=True))
    assert found.kind == "exited_zero" and found.evidence["expect_running"] is True


def test_exit_without_events_is_still_reported() -> None:
    view = ContainerView(info=ContainerInfo.from_attrs(load("crash")["inspect"]), now=T0)
    [found] = evaluate(view)
    assert found.kind == "exited_nonzero" and found.evidence["die_seen"] is False


# -- crash loops and the engine's restart policy -------------------------------------------


def test_engine_restart_policy_is_seen_and_not_fought() -> None:
    data = load("restart_policy")
    for snap in data["snapshots"][1:-1]:  # after the first crash, before the last exit
        view = recorded("restart_policy", until_ns=snap["time_ns"], inspect=snap["inspect"],
                        now=datetime.fromtimestamp(snap["time_ns"] / 1e9, UTC))
        assert engine_restarting(view), snap["status"]
        found = {f.kind: f for f in evaluate(view)}
        assert found["restarting"].severity == "info"
        assert "exited_nonzero" not in found
        for f in found.values():
            if f.kind in ("crash_loop", "oom_killed"):
                assert f.evidence["engine_restarting"] is True


def test_crash_loop_under_the_engine_policy_then_exhausted() -> None:
    view = recorded("restart_policy")
    assert not engine_restarting(view)  # MaximumRetryCount reached: exited for good
    [found] = evaluate(view)
    assert found.kind == "crash_loop" and found.failure_class == "recovery"
    assert (found.evidence["starts_in_window"], found.evidence["restart_count"]) == (5, 4)
    assert found.evidence["engine_restarting"] is False


def test_crash_loop_counts_starts_across_api_restarts() -> None:
    view = recorded("api_restart_crasher")
    assert view.info.restart_count == 0  # the API restarts reset it
    assert not engine_restarting(view)
    [found] = evaluate(view)
    assert found.kind == "crash_loop"
    assert found.evidence["starts_in_window"] == 4
    assert found.evidence["exit_codes"] == (3, 3, 3, 3)


def test_crash_loop_key_is_stable_while_it_lasts() -> None:
    base = recorded("api_restart_crasher")
    keys = {f.key for dt in (1, 10, 30) for f in evaluate(
        dataclasses.replace(base, now=base.events[-1].ts + timedelta(seconds=dt)))}
    assert len(keys) == 1
    later = dataclasses.replace(base, now=base.events[-1].ts + timedelta(seconds=120))
    assert kinds(evaluate(later)) == ["exited_nonzero"]  # the loop is over; the exit remains


def ev(action: str, at: float, cid: str, **attrs: str) -> Event:
    return parse_event({"Type": "container", "Action": action, "timeNano": int(
        (T0 + timedelta(seconds=at)).timestamp() * 1e9), "Actor": {"ID": cid, "Attributes": {
            "name": "web", **attrs}}})


def test_manual_restarts_are_not_a_crash_loop() -> None:
    info = ContainerInfo.from_attrs(load("api_restart")["inspect"])
    events = [ev("start", 0, info.id)]
    for t in (5, 10, 15):
        events += [ev("kill", t, info.id, signal="15"), ev("die", t + 0.1, info.id, exitCode="0"),
                   ev("stop", t + 0.2, info.id), ev("start", t + 0.3, info.id),
                   ev("restart", t + 0.3, info.id)]
    view = ContainerView(info=info, events=events, now=T0 + timedelta(seconds=20))
    assert kinds(evaluate(view)) == []


def test_events_of_other_containers_are_ignored() -> None:
    view = recorded("crash")
    other = [ev("start", 1, "f" * 64), ev("die", 2, "f" * 64, exitCode="1")] * 3
    assert kinds(evaluate(dataclasses.replace(view, events=[*view.events, *other]))) == [
        "exited_nonzero"]


# -- paused ---------------------------------------------------------------------------------


def test_paused_is_never_a_crash_nor_unhealthy() -> None:
    snap = load("pause")["snapshots"][0]
    view = recorded("pause", until_ns=snap["time_ns"], inspect=snap["inspect"],
                    now=datetime.fromtimestamp(snap["time_ns"] / 1e9, UTC))
    assert view.info.health == "unhealthy"  # what the engine says while paused
    [found] = evaluate(view)
    assert (found.kind, found.severity, found.evidence["left_paused"]) == ("paused", "info", False)
    later = evaluate(dataclasses.replace(view, now=view.now + timedelta(seconds=120)))
    assert [(f.kind, f.severity, f.evidence["left_paused"]) for f in later] == [
        ("paused", "warning", True)]
    assert later[0].key == found.key


def test_pause_not_seen_counts_as_left_paused() -> None:
    snap = load("pause")["snapshots"][0]
    view = ContainerView(info=ContainerInfo.from_attrs(snap["inspect"]), now=T0)
    [found] = evaluate(view)
    assert found.severity == "warning" and found.evidence["paused_at"] is None


def test_after_unpause_nothing_is_found() -> None:
    assert kinds(evaluate(recorded("pause"))) == []


# -- health ---------------------------------------------------------------------------------


def test_unhealthy_follows_the_engine() -> None:
    view = recorded("unhealthy")
    [found] = evaluate(view)
    event = next(e for e in view.events if e.action == "health_status: unhealthy")
    assert (found.kind, found.failure_class, found.since) == (
        "unhealthy", "communication", event.ts)
    assert found.evidence["failing_probes"] == 4 and found.evidence["flaps"] == 0
    assert "404" in found.evidence["last_probe"]["output"]


def test_probe_that_cannot_run_is_a_probe_error_not_unhealthy() -> None:
    view = recorded("probe_missing")
    assert view.info.health == "unhealthy"
    [found] = evaluate(view)
    assert (found.kind, found.failure_class, found.evidence["exit_code"]) == (
        "probe_error", "detection", -1)
    assert "no such file" in found.evidence["last_output"]
    assert found.since == view.info.started_at  # every known probe failed to run


def flap_probes() -> list[dict[str, Any]]:
    return [{"ts": parse_engine_time(p["Start"]), "exit_code": p["ExitCode"],
             "outcome": probe_outcome(p["ExitCode"], p["Output"]), "output": p["Output"]}
            for p in load("flap")["probes"]]


def test_flapping_is_one_incident_following_the_engine() -> None:
    base = recorded("flap")
    keys, flaps = set(), []
    for i, event in enumerate(base.events):
        if event.base_action != "health_status":
            continue
        view = dataclasses.replace(base, events=base.events[:i + 1], now=event.ts,
                                   info=dataclasses.replace(base.info, health=event.detail))
        for f in evaluate(view):
            keys.add(f.key)
            flaps.append(f.evidence["flaps"])
    assert len(keys) == 1 and flaps == [0, 1, 2]


@pytest.mark.parametrize(("healthy_after", "flap_window", "incidents", "flaps"), [
    (3, 60.0, 1, [0, 0, 0, 0, 1, 1, 1, 1, 1]),  # the last failure lands inside spell 2
    (2, 60.0, 1, [0, 0, 0, 1, 1, 1]),  # spell 2 ended by 2 ok probes; 1 failure is not enough
    (2, 0.5, 2, [0, 0, 0, 0, 0, 0]),  # spells 4 s apart are two incidents with a 0.5 s window
])
def test_hysteresis_on_recorded_flapping_probes(healthy_after: int, flap_window: float,
                                                incidents: int, flaps: list[int]) -> None:
    probes = flap_probes()
    assert [p["exit_code"] for p in probes] == [0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1]
    base = recorded("flap")
    config = RuleConfig(unhealthy_after=2, healthy_after=healthy_after, flap_window=flap_window)
    keys, seen = set(), []
    for n in range(1, len(probes) + 1):
        view = dataclasses.replace(base, probes=probes[:n], now=probes[n - 1]["ts"])
        for f in rules.find_unhealthy(view, config):
            keys.add(f.key)
            seen.append(f.evidence["flaps"])
    assert len(keys) == incidents and seen == flaps


def test_hysteresis_with_the_engine_status_counts_ok_probes() -> None:
    base, probes = recorded("flap"), flap_probes()
    keys, unhealthy = set(), []
    for n in range(1, len(probes) + 1):
        now = probes[n - 1]["ts"]
        events = [e for e in base.events if e.ts <= now]
        status = [e.detail for e in events if e.base_action == "health_status"] or ["starting"]
        view = dataclasses.replace(base, events=events, probes=probes[:n], now=now,
                                   info=dataclasses.replace(base.info, health=status[-1]))
        found = rules.find_unhealthy(view, RuleConfig(healthy_after=3))
        keys |= {f.key for f in found}
        unhealthy.append(bool(found))
    # 3 ok probes end spell 1; spell 2 outlasts the engine's "healthy" (2 ok, then a failure)
    assert unhealthy == [False] * 3 + [True] * 4 + [False] * 2 + [True] * 5
    assert len(keys) == 1


def probe(at: float, outcome: str, code: int = 1, output: str = "") -> dict[str, Any]:
    return {"ts": T0 + timedelta(seconds=at), "exit_code": 0 if outcome == "ok" else code,
            "outcome": outcome, "output": output}


def running(**changes: Any) -> ContainerInfo:
    info = ContainerInfo.from_attrs(load("unhealthy")["inspect"])
    return dataclasses.replace(info, **changes)


def test_unhealthy_for_counts_seconds_until_now() -> None:
    probes = [probe(0, "ok"), probe(1, "failed"), probe(2, "failed")]
    config = RuleConfig(unhealthy_for="5s")  # type: ignore[arg-type]  # strings are read too
    assert config.unhealthy_for == 5.0
    view = ContainerView(info=running(), probes=probes, now=T0 + timedelta(seconds=3))
    assert rules.find_unhealthy(view, config) == []
    [found] = rules.find_unhealthy(dataclasses.replace(view, now=T0 + timedelta(seconds=7)),
                                   config)
    assert found.since == T0 + timedelta(seconds=1) and found.evidence["mode"] == "probes"


def test_probe_errors_never_count_as_failures() -> None:
    probes = [probe(0, "ok")] + [probe(i, "error", -1, "OCI runtime exec failed")
                                 for i in range(1, 6)]
    view = ContainerView(info=running(health="healthy"), probes=probes,
                         now=T0 + timedelta(seconds=6))
    assert kinds(evaluate(view, RuleConfig(unhealthy_after=2))) == ["probe_error"]
    assert kinds(evaluate(view)) == ["probe_error"]
    later = [*probes, probe(7, "ok")]
    assert kinds(evaluate(dataclasses.replace(view, probes=later))) == []


def test_unhealthy_event_missed_falls_back_to_the_engine_status() -> None:
    probes = [probe(0, "ok"), probe(1, "failed", output="refused"), probe(2, "failed")]
    view = ContainerView(info=running(), probes=probes, now=T0 + timedelta(seconds=3))
    [found] = rules.find_unhealthy(view, RuleConfig())
    assert found.since == T0 + timedelta(seconds=1)
    assert rules.find_unhealthy(dataclasses.replace(view, info=running(health="healthy")),
                                RuleConfig()) == []


def test_no_healthcheck() -> None:
    info = running(health="", state="running")
    [found] = evaluate(ContainerView(info=info, now=T0))
    assert (found.kind, found.severity, found.failure_class) == (
        "no_healthcheck", "info", "detection")


# -- resources ------------------------------------------------------------------------------


def sample(at: float, mem: int, cpu: float = 0.0, limit: int = 64 * 2**20) -> StatsRow:
    return StatsRow(ts=T0 + timedelta(seconds=at), id="x", name="web", cpu_pct=cpu,
                    mem_used=mem, mem_limit=limit, mem_pct=mem / limit * 100, net_rx=0,
                    net_tx=0, blk_read=0, blk_write=0, pids=1)


def test_memory_pressure_needs_consecutive_samples() -> None:
    info = running(memory_limit=64 * 2**20)
    high, low = 62 * 2**20, 10 * 2**20
    rows = [sample(0, low), sample(1, high), sample(2, high), sample(3, high)]
    [found] = rules.find_memory_pressure(ContainerView(info=info, stats=rows, now=T0), RuleConfig())
    assert found.since == T0 + timedelta(seconds=1) and found.evidence["samples"] == 3
    assert found.evidence["memory_limit"] == 64 * 2**20
    broken = [sample(0, high), sample(1, high), sample(2, low), sample(3, high)]
    assert rules.find_memory_pressure(ContainerView(info=info, stats=broken, now=T0),
                                      RuleConfig()) == []


def test_cpu_pressure_is_against_the_quota() -> None:
    rows = [sample(i, 1, cpu=48.0) for i in range(3)]  # 48 % of one CPU
    view = ContainerView(info=running(cpu_limit=0.5), stats=rows, now=T0)
    [found] = rules.find_cpu_pressure(view, RuleConfig())
    assert found.evidence["share"] == pytest.approx(0.96)
    assert rules.find_cpu_pressure(dataclasses.replace(view, info=running(cpu_limit=0.0)),
                                   RuleConfig()) == []


# -- config, findings, module ----------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("unhealthy_after", 0), ("healthy_after", 1.5), ("crash_loop_starts", 1),
    ("pressure_samples", True), ("memory_pressure", 1.5), ("cpu_pressure", 0),
    ("unhealthy_for", "soon"), ("crash_loop_window", 0), ("paused_for", -1),
    ("flap_window", "x"), ("expect_running", "yes")])
def test_rule_config_rejects_bad_fields(field: str, value: Any) -> None:
    with pytest.raises(InvalidSpec) as info:
        RuleConfig(**{field: value})
    assert info.value.field == field and field in str(info.value)


def test_finding_is_read_only_and_round_trips() -> None:
    [found] = evaluate(recorded("host_kill9"))
    with pytest.raises(TypeError):
        found.evidence["exit_code"] = 0  # type: ignore[index]
    data = json.loads(json.dumps(found.to_dict()))
    assert Finding.from_dict(data) == found and data["key"] == found.key
    assert found.key == f"{found.container_id}:exited_nonzero:{found.since.isoformat()}"
    with pytest.raises(InvalidSpec) as bad:
        dataclasses.replace(found, severity="fatal")
    assert bad.value.field == "severity"
    with pytest.raises(TypeError):
        dataclasses.replace(found, evidence={"x": object()})


def test_module_exports_match() -> None:
    public = {n for n in vars(rules) if (not n.startswith("_") and (
        callable(getattr(rules, n)) or n == "RULES") and getattr(
        getattr(rules, n), "__module__", rules.__name__) == rules.__name__)
        or n == "RuleConfig"}  # exported as opskit.RuleConfig, so its module reads "opskit"
    assert public | {"Rule"} == set(rules.__all__)
    assert all(rule.__name__ in rules.__all__ for rule in rules.RULES)

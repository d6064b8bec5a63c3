"""Tests of opskit.spec.policy: the recovery policy's fields and the pure recovery state machine.

No clock is read: every call passes ``now``, and jitter comes from a seeded ``random.Random``.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opskit.base.errors import InvalidSpec
from opskit.records.findings import Finding
from opskit.spec.policy import ACTIONABLE_KINDS, RecoveryPolicy, RecoveryState, backoff_delay

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CID = "c" * 64


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def finding(kind: str = "unhealthy", **evidence: Any) -> Finding:
    return Finding(container_id=CID, container="web-1", service="web", kind=kind,
                   severity="critical", since=T0, evidence=evidence, hint="",
                   failure_class="communication")


def policy(**fields: Any) -> RecoveryPolicy:
    return RecoveryPolicy(**{"jitter": 0.0, **fields})


def run_failing(state: RecoveryState, start: float, attempts: int,
                kind: str = "unhealthy") -> tuple[float, list[float]]:
    """Decide, wait the delay, act and fail, ``attempts`` times; the delays seen."""
    now, delays = start, []
    for _ in range(attempts):
        decision = state.decide(finding(kind), at(now))
        assert decision.act, decision
        delays.append(decision.delay)
        now += decision.delay
        state.record_attempt(at(now), ok=False)
    return now, delays


# -- backoff --------------------------------------------------------------------------------


def test_backoff_sequence_is_initial_times_factor_capped() -> None:
    pol = policy(backoff_initial=1, backoff_factor=2.0, backoff_cap=60, max_attempts=9)
    assert [backoff_delay(pol, n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    _, delays = run_failing(RecoveryState(pol), 0, 9)
    assert delays == [0, 1, 2, 4, 8, 16, 32, 60, 60], "the first failure is acted on at once"
    other = policy(backoff_initial=0.5, backoff_factor=3.0, backoff_cap=10, max_attempts=5)
    assert run_failing(RecoveryState(other), 0, 5)[1] == [0, 0.5, 1.5, 4.5, 10]


def test_backoff_never_overflows() -> None:
    pol = policy(backoff_factor=100, backoff_cap=300)
    assert backoff_delay(pol, 10_000) == 300


def test_jitter_is_bounded_and_deterministic() -> None:
    pol = RecoveryPolicy(jitter=0.1, max_attempts=9)
    first = run_failing(RecoveryState(pol, seed=7), 0, 9)[1]
    again = run_failing(RecoveryState(pol, rng=random.Random(7)), 0, 9)[1]
    assert first == again and first[0] == 0
    for n, delay in enumerate(first[1:], start=1):
        base = min(60.0, 2.0 ** (n - 1))
        assert 0.9 * base <= delay <= min(1.1 * base, 60.0)
    assert first[1:] != [min(60.0, 2.0 ** n) for n in range(8)]


def test_repeated_decisions_count_down_the_same_backoff() -> None:
    state = RecoveryState(policy(backoff_initial=4))
    assert state.decide(finding(), at(0)).reason == "ready"
    state.record_attempt(at(0), ok=False)
    first = state.decide(finding(), at(0))
    second = state.decide(finding(), at(3))
    assert (first.delay, first.reason, second.delay, second.attempt) == (4, "backoff", 1, 2)
    assert state.decide(finding(), at(5)).reason == "ready"
    assert state.next_allowed_at == at(4)
    state.record_attempt(at(5), ok=True)
    assert state.next_allowed_at == at(5 + 8)


# -- budget and quarantine ------------------------------------------------------------------


def test_quarantine_after_exactly_max_attempts_in_the_window() -> None:
    state = RecoveryState(policy(max_attempts=5, quarantine_retry=None))
    now, _ = run_failing(state, 0, 4)
    assert not state.quarantined
    decision = state.decide(finding(), at(now))
    assert (decision.act, decision.attempt, decision.max_attempts) == (True, 5, 5)
    state.record_attempt(at(now + decision.delay), ok=False)
    assert state.quarantined and state.next_allowed_at is None
    refused = state.decide(finding(), at(now + 100))
    assert (refused.act, refused.reason) == (False, "quarantined")


def test_budget_exhausted_when_each_attempt_helps_only_for_a_while() -> None:
    state = RecoveryState(policy(max_attempts=3, quarantine_retry=None))
    now = 0.0
    for _ in range(3):
        decision = state.decide(finding(), at(now))
        assert decision.act
        now += decision.delay
        state.record_attempt(at(now), ok=True)
        now += 20
    decision = state.decide(finding(), at(now))
    assert (decision.act, decision.reason, decision.attempt) == (False, "quarantined", 4)
    assert state.quarantined


def test_attempts_outside_the_window_do_not_count() -> None:
    state = RecoveryState(policy(max_attempts=3, window="10m", backoff_cap=1))
    for i in range(10):
        decision = state.decide(finding(), at(i * 301))
        assert decision.act and decision.attempt <= 2, (i, decision)
        state.record_attempt(at(i * 301 + decision.delay), ok=False)
    assert not state.quarantined


def test_crash_loop_uses_half_the_budget() -> None:
    state = RecoveryState(policy(max_attempts=5, quarantine_retry=None))
    now, _ = run_failing(state, 0, 3, kind="crash_loop")
    assert state.quarantined
    assert state.decide(finding("crash_loop"), at(now + 1)).reason == "quarantined"


def test_acknowledge_lifts_quarantine() -> None:
    state = RecoveryState(policy(max_attempts=2))
    now, _ = run_failing(state, 0, 2)
    assert state.quarantined
    state.acknowledge(at(now + 60))
    assert not state.quarantined and state.acknowledged_at == at(now + 60)
    decision = state.decide(finding(), at(now + 61))
    assert (decision.act, decision.attempt, decision.delay) == (True, 1, 0)


def test_reset_after_a_healthy_period() -> None:
    state = RecoveryState(policy(max_attempts=5, reset_after=600, window="1h"))
    now, _ = run_failing(state, 0, 3)
    state.record_healthy(at(now + 10))
    state.record_healthy(at(now + 500))
    assert state.attempts_in_window(at(now + 500)) == 3  # not yet
    state.decide(finding(), at(now + 550))  # failing again: the healthy period is broken
    state.record_healthy(at(now + 560))
    state.record_healthy(at(now + 1100))
    assert state.attempts_in_window(at(now + 1100)) == 3
    state.record_healthy(at(now + 1160))
    assert state.attempts_in_window(at(now + 1160)) == 0
    decision = state.decide(finding(), at(now + 1200))
    assert (decision.attempt, decision.delay) == (1, 0)  # the backoff starts over too


def test_quarantine_retries_slowly_with_a_capped_backoff() -> None:
    """After the fast budget, attempts go on at a backoff capped by quarantine_retry; the
    flag stays up (alerted) while they do."""
    state = RecoveryState(policy(max_attempts=3, backoff_initial=1, backoff_cap=60,
                                 quarantine_retry=5))
    now, delays = run_failing(state, 0, 3)
    assert delays == [0, 1, 2] and state.quarantined
    slow = []
    for _ in range(4):
        decision = state.decide(finding(), at(now))
        assert decision.act and decision.reason in ("slow retry", "backoff") and \
            decision.quarantined, decision
        slow.append(decision.delay)
        now += decision.delay
        state.record_attempt(at(now), ok=False)
    assert slow == [4, 5, 5, 5], "doubling, capped at quarantine_retry"
    assert state.quarantined


def test_a_slow_retry_that_cures_keeps_the_flag_until_a_healthy_period() -> None:
    state = RecoveryState(policy(max_attempts=2, quarantine_retry=10, reset_after=60))
    now, _ = run_failing(state, 0, 2)
    decision = state.decide(finding(), at(now))
    now += decision.delay
    state.record_attempt(at(now), ok=True)  # the cause went away: healed by itself
    assert state.quarantined, "still flagged: fast retries wait for a healthy period"
    assert not state.record_healthy(at(now + 1))
    assert not state.record_healthy(at(now + 30))
    assert state.record_healthy(at(now + 61)), "a healthy period lifts the quarantine"
    assert not state.quarantined and state.lifted_at == at(now + 61)
    decision = state.decide(finding(), at(now + 100))
    assert (decision.act, decision.reason, decision.attempt) == (True, "ready", 1)


def test_the_ladder_climbs_after_an_attempt_that_did_not_cure() -> None:
    state = RecoveryState(policy(max_attempts=9))
    assert RecoveryPolicy().ladder == ("restart", "recreate")
    steps = []
    for ok in (False, True, False, False, False):
        decision = state.decide(finding(), at(len(steps) * 100))
        steps.append(decision.action)
        state.record_attempt(at(len(steps) * 100), ok=ok)
    # restart did not cure: recreate (cured); then restart again, recreate, and stay on top
    assert steps == ["restart", "recreate", "restart", "recreate", "recreate"]


def test_ladder_field() -> None:
    assert RecoveryPolicy(action="recreate").ladder == ("recreate",)
    assert RecoveryPolicy(action="none").ladder == ()
    pol = RecoveryPolicy(ladder=["recreate", "restart"])
    assert pol.ladder == ("recreate", "restart") and pol.action == "recreate"
    assert RecoveryPolicy.from_dict(pol.to_dict()) == pol
    for bad in ([], ["reboot"], "restart"):
        with pytest.raises(InvalidSpec) as info:
            RecoveryPolicy(ladder=bad)
        assert info.value.field == "ladder"
    with pytest.raises(InvalidSpec) as info:
        RecoveryPolicy(quarantine_retry=0)
    assert info.value.field == "quarantine_retry"


# -- what is never acted on ------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "reason"), [
    ("paused", "not actionable kind"), ("probe_error", "not actionable kind"),
    ("memory_pressure", "not actionable kind"), ("cpu_pressure", "not actionable kind"),
    ("no_healthcheck", "not actionable kind"), ("restarting", "engine restarting")])
def test_kinds_never_acted_on(kind: str, reason: str) -> None:
    decision = RecoveryState(policy()).decide(finding(kind), at(0))
    assert (decision.act, decision.reason) == (False, reason)


def test_actionable_kinds() -> None:
    expected = {"unhealthy", "exited_nonzero", "exited_zero", "oom_killed", "crash_loop"}
    assert set(ACTIONABLE_KINDS) == expected
    state = RecoveryState(policy())
    assert not state.decide(finding("exited_zero"), at(0)).act
    assert state.decide(finding("exited_zero", expect_running=True), at(0)).act
    assert state.decide(finding("oom_killed"), at(0)).act


def test_engine_restarting_and_intentional_stop_are_respected() -> None:
    state = RecoveryState(policy())
    assert state.decide(finding("crash_loop", engine_restarting=True), at(0)).reason == (
        "engine restarting")
    assert state.decide(finding("exited_nonzero"), at(0),
                        engine_restarting=True).reason == "engine restarting"
    assert state.decide(finding("exited_nonzero"), at(0),
                        intentional_stop=True).reason == "intentional stop"
    assert state.attempts_in_window(at(0)) == 0 and state.next_allowed_at is None


def test_dry_run_never_acts_but_reports_the_decision() -> None:
    state = RecoveryState(policy(dry_run=True, action="recreate"))
    decision = state.decide(finding(), at(0))
    assert (decision.act, decision.reason, decision.dry_run) == (False, "dry run", True)
    assert (decision.action, decision.delay, decision.attempt) == ("recreate", 0, 1)
    assert decision.to_dict()["key"] == finding().key


def test_action_none_only_reports() -> None:
    decision = RecoveryState(policy(action="none")).decide(finding(), at(0))
    assert (decision.act, decision.reason) == (False, "action none")


# -- the policy's fields ----------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("action", "reboot"), ("backoff_initial", -1), ("backoff_factor", 0.5),
    ("backoff_factor", "2"), ("backoff_cap", 0.5), ("jitter", 1.0), ("jitter", -0.1),
    ("max_attempts", 0), ("max_attempts", 2.5), ("window", "soon"), ("window", 0),
    ("reset_after", True), ("verify_timeout", 0), ("restart_timeout", "1 minute"),
    ("dry_run", "no")])
def test_bad_policy_fields_name_the_field(field: str, value: Any) -> None:
    with pytest.raises(InvalidSpec) as info:
        RecoveryPolicy(**{field: value})
    assert info.value.field == field and f"'{field}'" in str(info.value)


def test_defaults_and_duration_strings() -> None:
    pol = RecoveryPolicy.from_dict({"window": "10m", "backoff_cap": "1m", "reset_after": "5m"})
    assert (pol.window, pol.backoff_cap, pol.reset_after) == (600.0, 60.0, 300.0)
    default = RecoveryPolicy()
    assert (default.action, default.backoff_initial, default.backoff_factor, default.jitter,
            default.max_attempts, default.window, default.verify_timeout,
            default.restart_timeout, default.dry_run) == (
        "restart", 1.0, 2.0, 0.1, 5, 600.0, 30.0, 1.0, False)
    assert RecoveryPolicy.from_dict(default.to_dict()) == default


def test_unknown_keys_are_errors() -> None:
    with pytest.raises(InvalidSpec) as info:
        RecoveryPolicy.from_dict({"max_attempts": 3, "max_retries": 3})
    assert info.value.field == "max_retries"
    with pytest.raises(InvalidSpec):
        RecoveryPolicy.from_dict(["restart"])  # type: ignore[arg-type]


def test_from_yaml_text_and_file(tmp_path: Any) -> None:
    text = "action: recreate\nwindow: 10m\nmax_attempts: 3\n"
    assert RecoveryPolicy.from_yaml(text) == RecoveryPolicy(action="recreate", window=600.0,
                                                            max_attempts=3)
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    assert RecoveryPolicy.from_yaml(path).max_attempts == 3
    with pytest.raises(InvalidSpec) as info:
        RecoveryPolicy.from_yaml("jitter: [\n")
    assert info.value.field == "policy"
    with pytest.raises(InvalidSpec):
        RecoveryPolicy.from_yaml(str(tmp_path / "missing.yaml"))

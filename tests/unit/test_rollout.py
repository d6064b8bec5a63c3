"""Swarm rollout settings: every field explicit, the monitor covers the healthcheck, the known
traps are named before anything reaches the engine."""

from __future__ import annotations

import pytest

from opskit.base.errors import InvalidSpec
from opskit.spec import Healthcheck
from opskit.spec.rollout import (
    MONITOR_MARGIN,
    Rollout,
    derive_rollout,
    detection_time,
    lint_rollout,
)

CHECK = Healthcheck(test=["CMD", "true"], interval=2, timeout=1, retries=3, start_period=4)


def test_the_monitor_covers_the_healthchecks_detection_time() -> None:
    assert detection_time(CHECK) == 4 + (2 + 1) * 3
    rollout = derive_rollout(CHECK)
    assert rollout.monitor == 13 + MONITOR_MARGIN
    assert rollout.deadline >= 2 * rollout.monitor
    assert lint_rollout(rollout, CHECK, replicas=3) == []


def test_every_field_is_explicit_in_the_engines_units() -> None:
    update = derive_rollout(CHECK).update_config()
    assert update == {"Parallelism": 1, "Delay": 0, "FailureAction": "rollback",
                      "Monitor": 18_000_000_000, "MaxFailureRatio": 0.0, "Order": "start-first"}
    assert derive_rollout(CHECK).rollback_config()["FailureAction"] == "pause"


def test_no_healthcheck_means_the_margin_alone_and_overrides_win() -> None:
    assert derive_rollout(None).monitor == MONITOR_MARGIN
    assert derive_rollout(CHECK, order="stop-first", deadline=30.0).deadline == 30.0
    with pytest.raises(InvalidSpec, match=r"rollout\.speed") as info:
        derive_rollout(CHECK, speed=1)
    assert info.value.hint and "monitor" in info.value.hint


@pytest.mark.parametrize("field,value", [("parallelism", 0), ("parallelism", True),
                                         ("order", "random"), ("failure_action", "retry"),
                                         ("monitor", -1), ("max_failure_ratio", 2)])
def test_bad_values_name_their_field(field, value) -> None:
    with pytest.raises(InvalidSpec, match=rf"rollout\.{field}"):
        Rollout(**{field: value})


def test_the_known_traps_are_named() -> None:
    short = Rollout(monitor=5.0)
    problems = {p.field: p for p in lint_rollout(short, CHECK, replicas=3)}
    assert problems["rollout.monitor"].severity == "error"
    assert "never rolled back" in problems["rollout.monitor"].problem
    full = lint_rollout(derive_rollout(CHECK), CHECK, replicas=3, max_per_node=1, nodes=3)
    assert [p.field for p in full] == ["rollout.order"] and full[0].severity == "error"
    assert lint_rollout(derive_rollout(CHECK, order="stop-first"), CHECK, replicas=3,
                        max_per_node=1, nodes=3) == []
    risky = {p.field for p in lint_rollout(Rollout(failure_action="continue", parallelism=5,
                                                   monitor=60), CHECK, replicas=2)}
    assert risky == {"rollout.failure_action", "rollout.parallelism"}

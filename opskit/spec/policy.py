"""The recovery policy, and a pure state machine that decides when to act on a finding.

:class:`RecoveryPolicy` says what to do (``restart``, ``recreate`` or ``none``), how long to
back off between attempts, how many attempts a window allows, and when a healthy spell wipes
the slate. :class:`RecoveryState` holds one container's history under a policy and answers
:meth:`~RecoveryState.decide` with a :class:`Decision`. It reads no clock: every method takes
``now``. Jitter comes from a :class:`random.Random` given (or seeded) by the caller.

For comparison: Docker's own policy backs off 100 ms doubling to 1 min, never acts on
``unhealthy`` and has no budget; docker-autoheal has neither backoff nor budget and restarts
containers stopped on purpose; Kubernetes backs off 10 s doubling to 5 min and never gives up.
Here the fast budget is ``max_attempts`` within ``window``, each attempt climbing the policy's
``ladder`` (``restart``, then ``recreate`` when a restart did not cure). Once the budget is spent
and the service still fails, the container is *quarantined*: flagged and alerted, and retried
only slowly (a backoff capped at ``quarantine_retry``, 30 s by default), so a transient cause
(a dependency that comes back) heals without a person. Fast retries resume after
:meth:`~RecoveryState.acknowledge` or after ``reset_after`` seconds of health. With
``quarantine_retry=None`` quarantine stops every action until acknowledged.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..base.errors import InvalidSpec
from ..base.units import checked_duration
from ..records.findings import Finding

__all__ = ["ACTIONABLE_KINDS", "ACTIONS", "LADDER_STEPS", "Decision", "RecoveryPolicy",
           "RecoveryState", "backoff_delay"]

ACTIONS = ("restart", "recreate", "none")
LADDER_STEPS = ("restart", "recreate")
_LADDERS = {"restart": ("restart", "recreate"), "recreate": ("recreate",), "none": ()}
ACTIONABLE_KINDS = frozenset({"unhealthy", "exited_nonzero", "exited_zero", "oom_killed",
                              "crash_loop"})
_DURATIONS = {"backoff_initial": 0.0, "backoff_cap": 0.0, "window": 0.001, "reset_after": 0.0,
              "verify_timeout": 0.001, "restart_timeout": 0.0}


@dataclass(frozen=True)
class RecoveryPolicy:
    """How opskit recovers a failing container; every field is checked when made.

    Durations are seconds; strings such as ``"10m"`` are read with
    :func:`~opskit.base.units.parse_duration` (in the constructor too).

    Args:
        action: the first step: ``restart`` (``docker restart -t restart_timeout``),
            ``recreate`` (a new container from the spec: a fresh filesystem) or ``none`` (only
            report).
        ladder: the steps in order; an attempt after one that did not cure climbs a step, a
            cure goes back to the first. By default ``("restart", "recreate")`` for
            ``action="restart"``, ``("recreate",)`` for ``"recreate"``; when given, its first
            step is the ``action``.
        backoff_initial, backoff_factor, backoff_cap: the first attempt runs at once; the
            (n+1)-th waits ``initial * factor ** (n - 1)`` seconds after the n-th, at most
            ``cap`` (1 s, 2.0, 60 s).
        jitter: share of the delay drawn at random either way (0.1 = +/- 10 %; the cap holds).
        max_attempts: attempts allowed within ``window`` (5 in 10 min): the fast budget; then
            quarantine.
        window: the sliding window of the budget.
        quarantine_retry: in quarantine, retry slowly: the backoff goes on growing, capped at
            this many seconds (30: at most two starts a minute, and a cause gone away is
            noticed within 30 s); None: no action in quarantine until acknowledged.
        reset_after: seconds of health after which the attempts are forgotten and a
            quarantine lifts (600).
        verify_timeout: seconds for the container to be running and healthy after an action.
        restart_timeout: stop timeout given to restart (1 s: a PID 1 that ignores SIGTERM
            otherwise holds the restart for the engine's 10 s).
        dry_run: decide and report, never act.

    Raises:
        InvalidSpec: a field is out of range or of the wrong type; it names the field.
    """

    action: str = "restart"
    backoff_initial: float = 1.0
    backoff_factor: float = 2.0
    backoff_cap: float = 60.0
    jitter: float = 0.1
    max_attempts: int = 5
    window: float = 600.0
    reset_after: float = 600.0
    verify_timeout: float = 30.0
    restart_timeout: float = 1.0
    dry_run: bool = False
    ladder: tuple[str, ...] | None = None
    quarantine_retry: float | None = 30.0

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise InvalidSpec("action", f"{self.action!r} is not a recovery action",
                              allowed=", ".join(ACTIONS), value=self.action)
        self._check_ladder()
        if self.quarantine_retry is not None:
            object.__setattr__(self, "quarantine_retry", checked_duration(
                "quarantine_retry", self.quarantine_retry, least=0.001))
        for name, least in _DURATIONS.items():
            object.__setattr__(self, name, checked_duration(name, getattr(self, name),
                                                            least=least))
        factor = self.backoff_factor
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not (
                1 <= factor <= 100):
            raise InvalidSpec("backoff_factor", f"{factor!r} is not a factor from 1 to 100",
                              allowed="a number from 1 (constant) to 100", value=factor)
        if self.backoff_cap < self.backoff_initial:
            raise InvalidSpec("backoff_cap", f"{self.backoff_cap:g}s is below backoff_initial "
                              f"({self.backoff_initial:g}s)", allowed="at least backoff_initial",
                              value=self.backoff_cap)
        jitter = self.jitter
        if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not (
                0 <= jitter < 1):
            raise InvalidSpec("jitter", f"{jitter!r} is not a share below 1",
                              allowed="0 (none) up to but not 1, e.g. 0.1", value=jitter)
        attempts = self.max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise InvalidSpec("max_attempts", f"{attempts!r} is not a whole number >= 1",
                              allowed="1, 2, 3, ...", value=attempts)
        if not isinstance(self.dry_run, bool):
            raise InvalidSpec("dry_run", f"{self.dry_run!r} is not a boolean",
                              allowed="true or false", value=self.dry_run)

    def _check_ladder(self) -> None:
        ladder = self.ladder
        if self.action == "none":
            object.__setattr__(self, "ladder", ())
            return
        if ladder is None:
            object.__setattr__(self, "ladder", _LADDERS[self.action])
            return
        if isinstance(ladder, str) or not isinstance(ladder, list | tuple) or not ladder or \
                not all(step in LADDER_STEPS for step in ladder):
            raise InvalidSpec("ladder", f"{ladder!r} is not a list of recovery steps",
                              allowed=f"a non-empty list of {', '.join(LADDER_STEPS)}, e.g. "
                              "['restart', 'recreate']", value=ladder)
        object.__setattr__(self, "ladder", tuple(ladder))
        object.__setattr__(self, "action", ladder[0])

    def step(self, rung: int) -> str:
        """The ladder's step for ``rung`` (0-based; the last step once past the top)."""
        steps = self.ladder or ()
        return steps[min(rung, len(steps) - 1)] if steps else "none"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecoveryPolicy:
        """Build from a mapping; an unknown key raises :class:`InvalidSpec` naming it."""
        names = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(data, Mapping):
            raise InvalidSpec("policy", f"{type(data).__name__} is not a mapping",
                              allowed=", ".join(names))
        unknown = sorted(str(k) for k in data if k not in names)
        if unknown:
            raise InvalidSpec(unknown[0], "unknown field", allowed=", ".join(names))
        return cls(**data)

    @classmethod
    def from_yaml(cls, source: str | Path) -> RecoveryPolicy:
        """Read a policy from a YAML file path, or from YAML text when it contains a newline."""
        import yaml

        text, origin = str(source), "YAML text"
        if "\n" not in text:
            try:
                text, origin = Path(text).read_text(), text
            except OSError as exc:
                raise InvalidSpec("policy", f"cannot read {text}: {exc.strerror}",
                                  hint="give the path of a YAML policy file.") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidSpec("policy", f"{origin} is not valid YAML: {exc}") from None
        return cls.from_dict(data if data is not None else {})

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping (durations in seconds) that :meth:`from_dict` reads back."""
        out = dataclasses.asdict(self)
        out["ladder"] = list(self.ladder or ())
        return out


def backoff_delay(policy: RecoveryPolicy, attempt: int, rng: random.Random | None = None,
                  *, cap: float | None = None) -> float:
    """Seconds to wait before the ``attempt``-th attempt (1-based).

    ``min(cap, initial * factor ** (attempt - 1))``, then with ``rng`` moved by up to
    ``jitter`` of itself either way and kept within the cap (``backoff_cap`` unless given).
    """
    cap = policy.backoff_cap if cap is None else cap
    try:
        delay = min(cap, policy.backoff_initial * policy.backoff_factor ** max(attempt - 1, 0))
    except OverflowError:
        delay = cap
    if rng is not None and policy.jitter:
        delay *= 1.0 + rng.uniform(-policy.jitter, policy.jitter)
    return min(delay, cap)


@dataclass(frozen=True)
class Decision:
    """What :meth:`RecoveryState.decide` answered for one finding.

    Attributes:
        act: whether to act (after ``delay`` seconds).
        action: the step to take: the ladder's ``restart`` or ``recreate`` (``none`` for a
            policy that only reports).
        delay: seconds to wait before acting: the backoff still to run.
        reason: ``backoff`` (act once the delay ran), ``ready`` (act now), ``slow retry``
            (quarantined, retried at the slow pace), or why not: ``not actionable kind``,
            ``engine restarting``, ``intentional stop``, ``action none``, ``quarantined``
            (and no slow retry), ``dry run``.
        attempt: the number this attempt would have within the window; max_attempts: of how
            many (a crash loop gets half the budget).
        kind, key: the finding's.
        dry_run: the policy only reports; what it would do is in the other fields.
        quarantined: the container is quarantined (the fast budget is spent).
        rung: the ladder's step (0-based) this attempt takes.
    """

    act: bool
    action: str
    delay: float
    reason: str
    attempt: int
    max_attempts: int
    kind: str
    key: str
    dry_run: bool = False
    quarantined: bool = False
    rung: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping, for a journal."""
        return dataclasses.asdict(self)


class RecoveryState:
    """One container's recovery history under a policy: a pure state machine.

    Call :meth:`decide` for each failing pass, :meth:`record_attempt` after each action (with
    whether the container was then verified running and healthy), :meth:`record_healthy` on
    every pass that sees it healthy, and :meth:`acknowledge` when a person lifts quarantine.

    Args:
        policy: the recovery policy.
        rng: the source of jitter; by default ``random.Random(seed)``.
        seed: seed of the default source (None: from the system).
    """

    def __init__(self, policy: RecoveryPolicy, *, rng: random.Random | None = None,
                 seed: int | None = None) -> None:
        self.policy = policy
        self._rng = rng if rng is not None else random.Random(seed)
        self._attempts: list[tuple[datetime, bool]] = []
        self._streak = 0  # attempts since the last reset: the backoff exponent
        self._rung = 0  # the ladder's step of the next attempt
        self._due: datetime | None = None
        self._budget = policy.max_attempts
        self._healthy_since: datetime | None = None
        self.quarantined_at: datetime | None = None
        self.acknowledged_at: datetime | None = None
        self.lifted_at: datetime | None = None

    @property
    def quarantined(self) -> bool:
        """Whether the fast budget is spent: flagged, and retried only at the slow pace (or
        not at all with ``quarantine_retry=None``) until acknowledged or healthy for a while."""
        return self.quarantined_at is not None

    @property
    def next_allowed_at(self) -> datetime | None:
        """When the next action may run (None: no backoff pending, or no action while
        quarantined)."""
        if self.quarantined and self.policy.quarantine_retry is None:
            return None
        return self._due

    @property
    def rung(self) -> int:
        """The ladder's step (0-based) the next attempt takes."""
        return self._rung

    def attempts_in_window(self, now: datetime) -> int:
        """Attempts made within the policy's window before ``now``."""
        start = _utc(now) - timedelta(seconds=self.policy.window)
        return sum(1 for when, _ in self._attempts if when > start)

    def decide(self, finding: Finding, now: datetime, *, engine_restarting: bool = False,
               intentional_stop: bool = False) -> Decision:
        """Whether, when and how to act on ``finding``; the first failure starts the backoff.

        Args:
            finding: a finding of :mod:`opskit.recover.rules` for this container.
            now: the time of the pass.
            engine_restarting: the engine's restart policy is at work
                (:func:`opskit.recover.rules.engine_restarting`); also read from the evidence.
            intentional_stop: the exit was asked for
                (:func:`opskit.recover.rules.intentional_stop`).
        """
        now, policy, kind = _utc(now), self.policy, finding.kind
        budget = -(-policy.max_attempts // 2) if kind == "crash_loop" else policy.max_attempts
        attempt = self.attempts_in_window(now) + 1

        def answer(reason: str, act: bool = False, delay: float = 0.0) -> Decision:
            return Decision(act=act, action=policy.step(self._rung), delay=delay,
                            reason=reason, attempt=attempt, max_attempts=budget, kind=kind,
                            key=finding.key, dry_run=policy.dry_run,
                            quarantined=self.quarantined, rung=self._rung)

        if kind not in ACTIONABLE_KINDS or (
                kind == "exited_zero" and not finding.evidence.get("expect_running")):
            return answer("engine restarting" if kind == "restarting" else "not actionable kind")
        if engine_restarting or finding.evidence.get("engine_restarting"):
            return answer("engine restarting")
        if intentional_stop or finding.evidence.get("intentional_stop"):
            return answer("intentional stop")
        self._healthy_since = None
        if not policy.ladder:
            return answer("action none")
        if attempt > budget and not self.quarantined:
            self.quarantined_at = now
        self._budget = budget
        if self.quarantined and policy.quarantine_retry is None:
            return answer("quarantined")
        if self._due is None:
            # the first failure is acted on at once (Docker's own policy waits 100 ms, k8s 10 s:
            # a crash that one restart cures should cost one restart); backoff starts after it
            self._due = now if self._streak == 0 else now + timedelta(seconds=self._backoff())
        delay = max(0.0, (self._due - now).total_seconds())
        if policy.dry_run:
            return answer("dry run", delay=delay)
        reason = "slow retry" if self.quarantined else "backoff" if delay > 0 else "ready"
        return answer(reason, act=True, delay=delay)

    def record_attempt(self, now: datetime, ok: bool) -> None:
        """Note an action taken at ``now``; ``ok``: verified running and healthy afterwards.

        A failed attempt climbs the ladder a step, a cure goes back to its first step. A
        failed attempt that uses the last of the fast budget quarantines the container; from
        then on the backoff is capped at ``quarantine_retry``.
        """
        now = _utc(now)
        self._attempts.append((now, ok))
        self._streak += 1
        self._rung = 0 if ok else min(self._rung + 1, max(len(self.policy.ladder or ()) - 1, 0))
        if not ok and self.attempts_in_window(now) >= self._budget and not self.quarantined:
            self.quarantined_at = now
        self._due = now + timedelta(seconds=self._backoff(self._streak))

    def record_healthy(self, now: datetime) -> bool:
        """Note the container healthy at ``now``; after ``reset_after`` seconds of it, the
        attempts, the backoff and the ladder are forgotten and a quarantine lifts.

        Returns:
            True when this call lifted a quarantine.
        """
        now = _utc(now)
        if self._healthy_since is None:
            self._healthy_since = now
        if (now - self._healthy_since).total_seconds() < self.policy.reset_after:
            return False
        lifted = self.quarantined
        self._attempts.clear()
        self._streak, self._due, self._rung = 0, None, 0
        if lifted:
            self.quarantined_at, self.lifted_at = None, now
        return lifted

    def acknowledge(self, now: datetime) -> None:
        """A person lifts quarantine at ``now``: a fresh budget, backoff and ladder."""
        self.acknowledged_at = _utc(now)
        self.quarantined_at = None
        self._attempts.clear()
        self._streak, self._due, self._healthy_since, self._rung = 0, None, None, 0

    def _backoff(self, attempt: int | None = None) -> float:
        cap = self.policy.quarantine_retry if self.quarantined else None  # None: backoff_cap
        return backoff_delay(self.policy, self._streak + 1 if attempt is None else attempt,
                             self._rng, cap=cap)


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)

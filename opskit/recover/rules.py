"""Detection rules: pure functions from what opskit read about one container to findings.

Each rule takes a :class:`ContainerView` (inspect record, the container's recent events, probe
rows, stats rows and ``now``) and a :class:`RuleConfig`, and returns a list of
:class:`~opskit.records.findings.Finding`; :func:`evaluate` runs every rule of :data:`RULES`. No
I/O.

What the engine sends (dockerd 20.10.24, API 1.41; recorded in ``tests/payloads/sequences``)::

    docker stop        kill (signal 15), die (exitCode 0), stop
    docker kill        kill (signal 9), die (exitCode 137)
    docker restart     kill (signal 15), die, stop, start, restart
    restart of exited  start, restart                    (no kill, die or stop)
    crash              die (exitCode 3)                  (no kill)
    host kill -9 PID   die (exitCode 137)                (no kill: a crash)
    OOM                oom, die (exitCode 137); State.OOMKilled true
    on-failure policy  die, start, die, start, ...       (no restart event; State "restarting")
    pause / unpause    pause, unpause
    unhealthy          health_status: unhealthy          (only on a change)

So an API stop or kill is told from a crash by the ``kill`` before the ``die`` (or the ``stop``
after it), and an engine restart from an API one by the ``restart`` event that follows an API
restart's ``start``. The engine reports ``State.Health.Status`` ``unhealthy`` for a paused or
stopped container without any event, so only a running container can be unhealthy here. Probes
that cannot run (exit -1, ``OCI runtime exec failed``) make the engine say ``unhealthy``: here
that is a ``probe_error``.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from numbers import Integral
from typing import Any, NamedTuple

from ..base.errors import InvalidSpec
from ..base.units import checked_duration
from ..observe.health import probe_outcome
from ..observe.inspection import ContainerInfo, parse_engine_time
from ..records.event_records import Event
from ..records.findings import Finding
from ..records.stats_calc import StatsRow

__all__ = ["RULES", "ContainerView", "Rule", "RuleConfig", "engine_restarting", "evaluate",
           "find_cpu_pressure", "find_crash_loop", "find_exited_nonzero", "find_exited_zero",
           "find_memory_pressure", "find_no_healthcheck", "find_oom_killed", "find_paused",
           "find_probe_error", "find_restarting", "find_unhealthy", "intentional_stop"]

_COUNTS = {"unhealthy_after": 1, "healthy_after": 1, "crash_loop_starts": 2,
           "pressure_samples": 1}
_DURATIONS = ("unhealthy_for", "flap_window", "crash_loop_window", "paused_for", "stop_window")
_OUTPUT_MAX = 500


@dataclass(frozen=True)
class RuleConfig:
    """Thresholds of the rules, checked when made.

    Args:
        unhealthy_after: consecutive failing probes before unhealthy; 1 (default) follows the
            engine's own status, which already applies the healthcheck's retries.
        healthy_after: consecutive ok probes that end an unhealthy spell (hysteresis).
        unhealthy_for: seconds of failing probes before unhealthy, instead of or besides
            counting (``"30s"`` accepted); None (default) to count only.
        flap_window: unhealthy spells less than this many seconds apart are one incident (60).
        crash_loop_starts, crash_loop_window: that many ``start`` events within that many
            seconds, with a crash before each but the first, is a crash loop (3 in 60 s).
        memory_pressure, cpu_pressure: share of the memory limit / CPU quota (0.9) held for
            ``pressure_samples`` consecutive stats samples (3).
        paused_for: seconds after which a paused container is "left paused" (60).
        stop_window: most seconds between an API ``kill`` and the ``die`` it explains (60).
        expect_running: the service should run, so an exit with code 0 is a finding too.

    Raises:
        InvalidSpec: a field is out of range; it names the field and what is allowed.
    """

    unhealthy_after: int = 1
    healthy_after: int = 1
    unhealthy_for: float | None = None
    flap_window: float = 60.0
    crash_loop_starts: int = 3
    crash_loop_window: float = 60.0
    memory_pressure: float = 0.9
    cpu_pressure: float = 0.9
    pressure_samples: int = 3
    paused_for: float = 60.0
    stop_window: float = 60.0
    expect_running: bool = False

    def __post_init__(self) -> None:
        for name, least in _COUNTS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise InvalidSpec(name, f"{value!r} is not a whole number >= {least}",
                                  allowed=f"{least}, {least + 1}, ...", value=value)
        for name in ("memory_pressure", "cpu_pressure"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                    0 < value <= 1):
                raise InvalidSpec(name, f"{value!r} is not a share of the limit",
                                  allowed="above 0 and at most 1 (0.9 = 90 %)", value=value)
        for name in _DURATIONS:
            value = getattr(self, name)
            if value is None and name == "unhealthy_for":
                continue
            # paused_for may be 0 (report any pause); the others must be above 0
            object.__setattr__(self, name, checked_duration(
                name, value, least=0.0 if name == "paused_for" else 0.001))
        if not isinstance(self.expect_running, bool):
            raise InvalidSpec("expect_running", f"{self.expect_running!r} is not a boolean",
                              allowed="true or false", value=self.expect_running)


@dataclass(frozen=True, kw_only=True)
class ContainerView:
    """What one pass of a watcher knows about one container.

    Args:
        info: the container as ``docker inspect`` shows it now.
        events: its recent events; others' events are dropped and the rest sorted by time.
        probes: health rows (``ts``, ``exit_code``, ``outcome`` ok/failed/error, ``output``), as
            :class:`~opskit.observe.health.HealthHistory` keeps them; empty to use
            ``info.health_log``.
        stats: recent :class:`~opskit.records.stats_calc.StatsRow` samples.
        now: the time of the pass (UTC; a naive datetime is taken as UTC).
    """

    info: ContainerInfo
    events: Sequence[Event] = ()
    probes: Sequence[Mapping[str, Any]] = ()
    stats: Sequence[StatsRow] = ()
    now: datetime

    def __post_init__(self) -> None:
        mine = [e for e in self.events if e.type == "container" and e.actor_id == self.info.id]
        object.__setattr__(self, "events", tuple(sorted(mine, key=lambda e: e.time_nano)))
        object.__setattr__(self, "probes", tuple(self.probes))
        object.__setattr__(self, "stats", tuple(sorted(self.stats, key=lambda r: r["ts"])))
        object.__setattr__(self, "now", _utc(self.now))


class _Probe(NamedTuple):
    ts: datetime
    exit_code: int | None
    outcome: str
    output: str


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _probes(view: ContainerView) -> list[_Probe]:
    rows = [(r.get("ts"), r.get("exit_code"), r.get("outcome"), r.get("output"))
            for r in view.probes] or [
        (parse_engine_time(e.get("Start")), e.get("ExitCode"), None, e.get("Output"))
        for e in view.info.health_log]
    out = []
    for ts, code, outcome, output in rows:  # pandas rows may hold numpy ints and pd.NA
        code = int(code) if isinstance(code, Integral) and not isinstance(code, bool) else None
        text = output if isinstance(output, str) else ""
        if isinstance(ts, datetime):
            out.append(_Probe(_utc(ts), code, outcome if isinstance(outcome, str) and outcome
                              else probe_outcome(code, text), text))
    return sorted(out, key=lambda p: p.ts)


def _trailing(probes: Sequence[_Probe], keep: Callable[[_Probe], bool]) -> list[_Probe]:
    """The last probes, oldest first, for as long as ``keep`` holds going backwards."""
    out: list[_Probe] = []
    for probe in reversed(probes):
        if not keep(probe):
            break
        out.insert(0, probe)
    return out


def _age(view: ContainerView, when: datetime) -> float:
    return (view.now - when).total_seconds()


def _dies(view: ContainerView) -> list[int]:
    return [i for i, e in enumerate(view.events) if e.base_action == "die"]


def _die_intentional(events: Sequence[Event], index: int, window: float) -> bool:
    """Whether the ``die`` at ``index`` answers an API kill/stop (kill before it, stop after)."""
    for later in events[index + 1:]:
        if later.base_action in ("stop", "destroy"):
            return True
        if later.base_action in ("start", "die"):
            break
    for earlier in reversed(events[:index]):
        if earlier.base_action in ("start", "die"):
            return False
        if earlier.base_action == "kill":
            return (events[index].time_nano - earlier.time_nano) / 1e9 <= window
    return False


def intentional_stop(view: ContainerView, config: RuleConfig | None = None) -> bool:
    """Whether the container's last ``die`` was asked for (``docker stop``, ``kill``, ``rm -f``).

    True when an API ``kill`` event came after the previous ``start`` and at most
    ``stop_window`` seconds before the ``die``, or a ``stop`` event followed it. A crash, a
    host-side ``kill -9`` of the container's PID and an OOM kill send no ``kill`` event.
    """
    dies = _dies(view)
    window = (config or RuleConfig()).stop_window
    return bool(dies) and _die_intentional(view.events, dies[-1], window)


def _crashes(view: ContainerView, config: RuleConfig) -> list[Event]:
    return [view.events[i] for i in _dies(view)
            if not _die_intentional(view.events, i, config.stop_window)]


def engine_restarting(view: ContainerView, config: RuleConfig | None = None) -> bool:
    """Whether the engine's own restart policy is at work, so opskit must not act as well.

    True when the state is ``restarting``, or when the container runs again because, within the
    last ``crash_loop_window`` seconds, a crash the policy covers (a ``die`` with no API kill or
    stop) was followed by a ``start`` with no ``restart`` event (an API restart sends one; an
    API ``start`` would have had to beat the policy's own start).
    """
    info, events, config = view.info, view.events, config or RuleConfig()
    if info.state != "running":
        return info.state == "restarting"
    dies, policy = _dies(view), info.restart_policy
    if not dies or _age(view, events[dies[-1]].ts) > config.crash_loop_window:
        return False
    covered = policy in ("always", "unless-stopped") or (
        policy == "on-failure" and events[dies[-1]].exit_code != 0)
    after = [e.base_action for e in events[dies[-1] + 1:] if e.base_action in ("start", "restart")]
    return (covered and not _die_intentional(events, dies[-1], config.stop_window)
            and after[:1] == ["start"] and after[1:2] != ["restart"])


def _chain_start(times: Sequence[datetime], gap: float) -> datetime:
    """The first of the trailing times whose neighbours are at most ``gap`` seconds apart."""
    first = times[-1]
    for earlier in reversed(times[:-1]):
        if (first - earlier).total_seconds() > gap:
            break
        first = earlier
    return first


def _finding(view: ContainerView, kind: str, severity: str, since: datetime,
             evidence: Mapping[str, Any], hint: str, failure_class: str) -> Finding:
    info = view.info
    return Finding(container_id=info.id, container=info.name, service=info.service, kind=kind,
                   severity=severity, since=since, evidence=evidence, hint=hint,
                   failure_class=failure_class)


def _last_stats(view: ContainerView) -> dict[str, Any] | None:
    row = view.stats[-1] if view.stats else None
    return None if row is None else {
        "ts": row["ts"], "mem_used": row["mem_used"], "mem_limit": row["mem_limit"],
        "mem_pct": round(row["mem_pct"], 2), "cpu_pct": round(row["cpu_pct"], 2),
        "pids": row["pids"]}


def find_crash_loop(view: ContainerView, config: RuleConfig) -> list[Finding]:
    """``crash_loop``: N ``start`` events within the window, with a crash before each but one.

    Counts events, not ``RestartCount``, which an API restart resets to 0.
    """
    window = config.crash_loop_window
    starts = [e.ts for e in view.events if e.base_action == "start"]
    recent = [t for t in starts if _age(view, t) <= window]
    crashes = [e for e in _crashes(view, config) if _age(view, e.ts) <= window]
    if len(recent) < config.crash_loop_starts or len(crashes) < config.crash_loop_starts - 1:
        return []
    return [_finding(
        view, "crash_loop", "critical", _chain_start(starts, window),
        {"starts_in_window": len(recent), "crashes_in_window": len(crashes),
         "window_s": window, "exit_codes": [e.exit_code for e in crashes][-10:],
         "start_times": recent[-10:], "restart_count": view.info.restart_count,
         "restart_policy": view.info.restart_policy,
         "engine_restarting": engine_restarting(view, config)},
        f"Container '{view.info.name}' started {len(recent)} times in {window:g}s and crashed "
        "each time, so restarting does not fix it: read its logs (ops.logs) and fix the image "
        "or its config.", "recovery")]


def _exited(view: ContainerView, config: RuleConfig, kind: str) -> list[Finding]:
    """An exit nobody asked for; an OOM kill and a crash loop have kinds of their own."""
    info = view.info
    if (info.state not in ("exited", "dead") or intentional_stop(view, config)
            or info.oom_killed or find_crash_loop(view, config)
            or (kind == "exited_zero") != (info.exit_code == 0)):
        return []
    first_run = [e.base_action for e in view.events
                 if e.base_action in ("create", "start")] == ["create", "start"] and not any(
        e.action == "health_status: healthy" for e in view.events)  # never served: deployment
    dies = _dies(view)
    code = info.exit_code
    name = signal.Signals(code - 128).name if code - 128 in signal.valid_signals() else None
    evidence = {"exit_code": code, "signal": name, "state": info.state,
                "finished_at": info.finished_at, "started_at": info.started_at,
                "die_seen": bool(dies), "first_run": first_run,
                "restart_count": info.restart_count, "restart_policy": info.restart_policy,
                "engine_restarting": False, "expect_running": config.expect_running}
    if kind == "exited_zero":
        hint = (f"Container '{info.name}' exited cleanly (code 0) but its service should keep "
                "running: check that its main process neither finishes nor daemonizes.")
    else:
        hint = (f"Container '{info.name}' exited with code {code}"
                f"{f' ({name})' if name else ''} with no stop or kill asked through the API: "
                "read its last logs (ops.logs) for the cause.")
    since = info.finished_at or (view.events[dies[-1]].ts if dies else view.now)
    return [_finding(view, kind, "critical", since, evidence, hint,
                     "deployment" if first_run else "management")]


def find_exited_nonzero(view: ContainerView, config: RuleConfig) -> list[Finding]:
    """``exited_nonzero``: stopped with a non-zero code that no API kill or stop explains.

    A host-side ``kill -9`` (exit 137, no ``kill`` event) is such a crash.
    """
    return _exited(view, config, "exited_nonzero")


def find_exited_zero(view: ContainerView, config: RuleConfig) -> list[Finding]:
    """``exited_zero``: a service that should run (``expect_running``) exited with code 0."""
    return _exited(view, config, "exited_zero") if config.expect_running else []


def find_oom_killed(view: ContainerView, config: RuleConfig) -> list[Finding]:
    """``oom_killed``: the kernel killed it for memory (``oom`` event, exit 137, OOMKilled).

    Also while the engine's restart policy brings it back (then with ``engine_restarting``).
    """
    info, events, dies = view.info, view.events, _dies(view)
    die = events[dies[-1]] if dies else None
    oom = None
    for earlier in reversed(events[:dies[-1]] if dies else ()):
        if earlier.base_action == "start":
            break
        oom = earlier if earlier.base_action == "oom" else oom
    restarting = engine_restarting(view, config)
    exited = info.state in ("exited", "dead") and (info.oom_killed or oom is not None)
    if not exited and not (oom is not None and restarting):
        return []
    limit = info.memory_limit
    since = (info.finished_at if exited else None) or (oom.ts if oom else view.now)
    return [_finding(
        view, "oom_killed", "critical", since,
        {"exit_code": die.exit_code if die else info.exit_code, "oom_killed": info.oom_killed,
         "oom_event_at": oom.ts if oom else None, "die_at": die.ts if die else None,
         "memory_limit": limit, "last_stats": _last_stats(view),
         "restart_count": info.restart_count, "restart_policy": info.restart_policy,
         "engine_restarting": restarting},
        f"Container '{info.name}' was killed for running out of memory (limit "
        f"{f'{limit / 2**20:g} MiB' if limit else 'none: the host ran out'}): raise the "
        "memory limit or find the leak; a restart alone will hit the limit again.",
        "management")]


def find_restarting(view: ContainerView, config: RuleConfig) -> list[Finding]:
    """``restarting`` (info): the engine's restart policy is restarting it; opskit stays out."""
    if not engine_restarting(view, config):
        return []
    info = view.info
    crashes = [e.ts for e in _crashes(view, config)]
    since = (_chain_start(crashes, config.crash_loop_window) if crashes
             else info.finished_at or view.now)
    policy = (info.attrs.get("HostConfig") or {}).get("RestartPolicy") or {}
    return [_finding(
        view, "restarting", "info", since,
        {"state": info.state, "restart_policy": info.restart_policy,
         "maximum_retry_count": policy.get("MaximumRetryCount", 0),
         "restart_count": info.restart_count, "exit_code": info.exit_code,
         "crashes_seen": len(crashes)},
        f"The engine's restart policy '{info.restart_policy}' is restarting '{info.name}', so "
        "opskit does not act meanwhile; if it keeps crashing, read its logs.", "recovery")]


def find_paused(view: ContainerView, config: RuleConfig) -> list[Finding]:
    """``paused``: paused, never a crash; a warning once left paused ``paused_for`` seconds.

    Without the ``pause`` event (it came before the events seen) ``since`` is the start time
    and the pause counts as left over.
    """
    info = view.info
    if info.state != "paused":
        return []
    pause: Event | None = None
    for e in view.events:
        pause = e if e.base_action == "pause" else (
            None if e.base_action in ("unpause", "start") else pause)
    seconds = _age(view, pause.ts) if pause else None
    left = seconds is None or seconds >= config.paused_for
    return [_finding(
        view, "paused", "warning" if left else "info",
        pause.ts if pause else info.started_at or view.now,
        {"paused_at": pause.ts if pause else None, "paused_s": seconds, "left_paused": left,
         "paused_for_threshold_s": config.paused_for, "engine_health": info.health},
        f"Container '{info.name}' is paused, not crashed, and opskit will not restart it; if "
        f"nobody means to keep it paused, run ops.unpause('{info.name}').", "management")]


@dataclass
class _Spell:
    start: datetime
    end: datetime | None = None


def _spells(signals: Sequence[tuple[datetime, str]], enter: int | None, enter_for: float | None,
            leave: int, now: datetime) -> list[_Spell]:
    """Unhealthy spells from ok/fail/reset signals, entered and left with hysteresis."""
    spells: list[_Spell] = []
    fails, oks, first = 0, 0, now
    for ts, sig in sorted(signals):
        cur = spells[-1] if spells and spells[-1].end is None else None
        if sig == "fail":
            fails, oks, first = fails + 1, 0, ts if fails == 0 else first
            if cur is None and ((enter is not None and fails >= enter) or (
                    enter_for is not None and (ts - first).total_seconds() >= enter_for)):
                spells.append(_Spell(first))
            continue
        if sig == "miss":  # a failed probe while the engine decides: breaks a recovery
            oks = 0
            continue
        fails, oks = 0, oks + 1 if sig == "ok" and cur else 0
        if cur is not None and (sig == "reset" or oks >= leave):
            cur.end, oks = ts, 0
    ongoing = spells and spells[-1].end is None
    if not ongoing and fails and enter_for is not None and (now - first).total_seconds() >= (
            enter_for):
        spells.append(_Spell(first))
    return spells


def find_unhealthy(view: ContainerView, config: RuleConfig) -> list[Finding]:
    """``unhealthy``: a running container whose healthcheck fails (a probe error never counts).

    With ``unhealthy_after`` 1 and no ``unhealthy_for``, spells begin at the engine's
    ``health_status: unhealthy`` events (or its current status); otherwise after
    ``unhealthy_after`` failing probe rows (or ``unhealthy_for`` seconds of them). Either way
    a spell ends after ``healthy_after`` ok probes (the engine's ``healthy`` event when 1 or
    without probes), or at a start or die. Spells less than ``flap_window`` apart are one
    incident: ``since`` is the first one's start, and the evidence counts the flaps.
    """
    info, probes = view.info, _probes(view)
    own = (config.unhealthy_after > 1 or config.unhealthy_for is not None) and bool(probes)
    if info.state != "running" or not (info.health or probes):
        return []
    signals = [(e.ts, "reset") for e in view.events if e.base_action in ("start", "die")]
    if own:
        signals += [(p.ts, "fail" if p.outcome == "failed" else "ok")
                    for p in probes if p.outcome != "error"]
        spells = _spells(signals, config.unhealthy_after if config.unhealthy_after > 1 else None,
                         config.unhealthy_for, config.healthy_after, view.now)
    else:
        not_ok = _trailing(probes, lambda p: p.outcome != "ok")
        if not_ok and all(p.outcome == "error" for p in not_ok):
            return []  # the engine counts probes that could not run: a probe_error instead
        hold = config.healthy_after > 1 and bool(probes)  # recovery counted in ok probes
        signals += [(e.ts, "fail") for e in view.events if e.action == "health_status: unhealthy"]
        signals += [(p.ts, "ok" if p.outcome == "ok" else "miss") for p in probes
                    if hold and p.outcome != "error"] or [
            (e.ts, "ok") for e in view.events if e.action == "health_status: healthy"]
        spells = _spells(signals, 1, None, config.healthy_after if hold else 1, view.now)
        ongoing = bool(spells) and spells[-1].end is None
        if info.health == "unhealthy" and not ongoing:  # its event was not seen
            spells.append(_Spell(not_ok[0].ts if not_ok else view.now))
        elif info.health != "unhealthy" and ongoing and not hold:  # nor was its recovery
            spells[-1].end = view.now
    if not spells or spells[-1].end is not None:
        return []
    chain = [spells[-1]]
    for spell in reversed(spells[:-1]):
        if spell.end is None or (chain[0].start - spell.end).total_seconds() > config.flap_window:
            break
        chain.insert(0, spell)
    last = probes[-1] if probes else None
    said = last.output.strip()[:120] if last else ""
    return [_finding(
        view, "unhealthy", "critical", chain[0].start,
        {"mode": "probes" if own else "engine", "spells": len(chain), "flaps": len(chain) - 1,
         "failing_probes": len(_trailing(probes, lambda p: p.outcome == "failed")),
         "engine_health": info.health, "engine_restarting": False,
         "last_probe": {"ts": last.ts, "exit_code": last.exit_code, "outcome": last.outcome,
                        "output": last.output[:_OUTPUT_MAX]} if last else None},
        f"Container '{info.name}' fails its healthcheck"
        f"{f' (last probe said {said!r})' if said else ''} and the engine never restarts an "
        "unhealthy container: check the service and its logs (ops.logs).", "communication")]


def find_probe_error(view: ContainerView, config: RuleConfig) -> list[Finding]:
    """``probe_error``: the latest probes could not run at all (its own kind, never unhealthy).

    When every known probe failed to run, ``since`` is the container's start.
    """
    probes = _probes(view)
    errors = _trailing(probes, lambda p: p.outcome == "error")
    if view.info.state != "running" or not errors:
        return []
    first, last, started = errors[0], errors[-1], view.info.started_at
    whole = len(errors) == len(probes) and started is not None and started <= first.ts
    return [_finding(
        view, "probe_error", "warning", started if whole and started else first.ts,
        {"errors": len(errors), "exit_code": last.exit_code, "first_error_at": first.ts,
         "last_output": last.output[:_OUTPUT_MAX], "engine_health": view.info.health},
        f"The healthcheck of '{view.info.name}' could not run (exit {last.exit_code}: "
        f"{last.output.strip()[:120]!r}): make its test name a program the image has; until "
        "then nobody knows whether the service is healthy.", "detection")]


def _pressure(view: ContainerView, config: RuleConfig, kind: str, threshold: float,
              share: Callable[[StatsRow], float], evidence: dict[str, Any],
              hint: str) -> list[Finding]:
    streak: list[tuple[StatsRow, float]] = []
    for row in reversed(view.stats if view.info.state == "running" else ()):
        if share(row) < threshold:
            break
        streak.insert(0, (row, share(row)))
    if len(streak) < config.pressure_samples:
        return []
    last = streak[-1][1]
    return [_finding(
        view, kind, "warning", streak[0][0]["ts"],
        {"share": round(last, 4), "threshold": threshold, "samples": len(streak), **evidence,
         "last_stats": _last_stats(view)},
        hint.format(name=view.info.name, share=last), "management")]


def find_memory_pressure(view: ContainerView, config: RuleConfig) -> list[Finding]:
    """``memory_pressure``: memory in use at or above the share of the limit for N samples."""
    cap = view.info.memory_limit or (view.stats[-1]["mem_limit"] if view.stats else 0)
    return [] if not cap else _pressure(
        view, config, "memory_pressure", config.memory_pressure,
        lambda row: row["mem_used"] / cap, {"memory_limit": cap,
                                            "limit_set": bool(view.info.memory_limit)},
        f"Container '{{name}}' uses {{share:.0%}} of its {cap / 2**20:g} MiB memory limit: "
        "raise the limit or find the leak before the OOM killer acts.")


def find_cpu_pressure(view: ContainerView, config: RuleConfig) -> list[Finding]:
    """``cpu_pressure``: CPU use at or above the share of its CPU quota for N samples."""
    quota = view.info.cpu_limit
    return [] if not quota else _pressure(
        view, config, "cpu_pressure", config.cpu_pressure,
        lambda row: row["cpu_pct"] / 100.0 / quota, {"cpu_limit": quota},
        f"Container '{{name}}' uses {{share:.0%}} of its {quota:g} CPU quota and is "
        "throttled: raise cpus in its spec or lower its load.")


def find_no_healthcheck(view: ContainerView, config: RuleConfig) -> list[Finding]:
    """``no_healthcheck`` (info): a running container without a healthcheck."""
    info = view.info
    if info.state != "running" or info.health:
        return []
    return [_finding(
        view, "no_healthcheck", "info", info.started_at or info.created or view.now,
        {"image": info.image},
        f"Container '{info.name}' has no healthcheck, so a hang goes unseen: add one to its "
        "spec (opskit.Healthcheck).", "detection")]


Rule = Callable[[ContainerView, RuleConfig], list[Finding]]

RULES: tuple[Rule, ...] = (
    find_unhealthy, find_probe_error, find_exited_nonzero, find_exited_zero, find_crash_loop,
    find_oom_killed, find_restarting, find_paused, find_memory_pressure, find_cpu_pressure,
    find_no_healthcheck,
)


def evaluate(view: ContainerView, config: RuleConfig | None = None) -> list[Finding]:
    """Run every rule of :data:`RULES` on one container; the findings in rule order."""
    config = config or RuleConfig()
    return [finding for rule in RULES for finding in rule(view, config)]

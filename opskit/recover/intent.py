"""Was a stopped container stopped on purpose? What the records say, and what they cannot.

A level-triggered watchdog finds containers down whatever happened before it looked. Before it
starts one again it asks, in order:

1. **opskit's action journal**: the last action on the container since its last start. A stop,
   kill or pause by a person through opskit is on purpose; a recovery of a watchdog's (an
   interrupted or failed recreate, say) is not: it left the container down.
2. **the events it saw** itself: an API ``kill`` before the ``die``, or a ``stop`` after it,
   is a ``docker stop``/``kill``; a ``die`` with neither is a crash (a host ``kill -9``, an
   exit, an OOM kill).
3. **the engine's own memory** (``docker events --since StartedAt --until FinishedAt``): the
   same reading, for a container that stopped while no watchdog ran. The engine keeps only its
   last 256 events.

When none of them can tell, the answer is *unknown*: the watchdog leaves the container alone and
says so in its status, since starting what a person stopped is worse than waiting for one.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..base import errors
from ..engine.connection import Engine
from ..engine.events import fetch_events
from ..observe.inspection import ContainerInfo
from ..records.event_records import Event, parse_event
from .rules import ContainerView, RuleConfig, intentional_stop

log = logging.getLogger("opskit")

__all__ = ["StopIntent", "stop_intent"]

_ON_PURPOSE = ("stop", "kill", "pause", "remove")
_LIFECYCLE = ["create", "start", "restart", "die", "kill", "stop", "oom", "destroy"]


@dataclass(frozen=True)
class StopIntent:
    """The answer of :func:`stop_intent`.

    Attributes:
        on_purpose: True (stopped on purpose), False (a failure: recover it), None (the
            records cannot tell).
        reason: one sentence for the journal and ``status()``.
        source: ``action journal``, ``events``, ``engine events`` or ``none``.
    """

    on_purpose: bool | None
    reason: str
    source: str


def _from_actions(info: ContainerInfo, actions: Any) -> StopIntent | None:
    """The action journal's last say on this run of the container."""
    if actions is None or not len(actions):
        return None
    rows = actions[actions["container_id"].astype(str) == info.id]
    if info.started_at is not None and len(rows):
        rows = rows[rows["ts"] >= info.started_at - timedelta(seconds=1)]
    rows = rows[~rows["result"].astype(str).isin(["skipped", "handled-by-peer", "dry-run"])]
    if not len(rows):
        return None
    last = rows.iloc[-1]
    actor, action = str(last["actor"]), str(last["action"])
    when = last["ts"].strftime("%H:%M:%S")
    if actor.startswith("watchdog:") and action in ("restart", "recreate") and \
            str(last["result"]) != "ok":
        return StopIntent(False, f"a recovery by {actor} at {when} ({action}, "
                          f"{last['result']}) left it down", "action journal")
    if action in _ON_PURPOSE and str(last["result"]) == "ok":
        return StopIntent(True, f"{actor} ran '{action}' through opskit at {when}",
                          "action journal")
    return None


def _from_events(info: ContainerInfo, events: Sequence[Event], config: RuleConfig,
                 source: str) -> StopIntent | None:
    view = ContainerView(info=info, events=events, now=datetime.now(UTC))
    dies = [e for e in view.events if e.base_action == "die"]
    if not dies:
        return None
    when = dies[-1].ts.strftime("%H:%M:%S")
    if intentional_stop(view, config):
        return StopIntent(True, f"a docker stop or kill through the API at {when} ({source})",
                          source)
    return StopIntent(False, f"it died at {when} with no stop or kill asked ({source}): a "
                      "failure", source)


def _engine_events(engine: Engine, info: ContainerInfo) -> list[Event]:
    """The engine's replay of this run's life-cycle events (empty when it has none)."""
    start = info.started_at or info.created
    end = info.finished_at
    if start is None or end is None:
        return []
    since_ns = int(start.timestamp() * 1e9) - 1_000_000_000
    # a stop event follows its die by milliseconds; never ask about the future: the engine
    # would hold the request open until then
    until_ns = min(int(end.timestamp() * 1e9) + 2_000_000_000, time.time_ns() - 1_000_000)
    payloads = fetch_events(engine.api, since_ns, until_ns, host=engine.host,
                            timeout=min(engine.timeout, 10.0),
                            filters={"container": [info.id], "type": ["container"],
                                     "event": _LIFECYCLE})
    out = []
    for payload in payloads:
        with contextlib.suppress(errors.EngineError):
            out.append(parse_event(payload, host=engine.host))
    return out


def stop_intent(engine: Engine, info: ContainerInfo, *, seen: Sequence[Event] = (),
                actions: Any = None, config: RuleConfig | None = None) -> StopIntent:
    """Whether a stopped container was stopped on purpose; see the module docstring.

    Args:
        info: the container, as inspected now (exited or created).
        seen: the events the caller saw of it.
        actions: the action journal as a DataFrame (:meth:`ActionJournal.frame`), or None.
        config: the rules' thresholds (``stop_window``).

    Raises:
        EngineUnavailable: the engine's events could not be read.
    """
    config = config or RuleConfig()
    found = _from_actions(info, actions) or _from_events(info, seen, config, "events")
    if found is not None:
        return found
    if info.state == "created" and info.started_at is None:
        return StopIntent(None, "it was created but never started", "none")
    found = _from_events(info, _engine_events(engine, info), config, "engine events")
    if found is not None:
        return found
    code = info.exit_code
    when = info.finished_at.strftime("%Y-%m-%d %H:%M:%S") if info.finished_at else "?"
    return StopIntent(None, f"it stopped at {when} UTC with code {code} before any watchdog "
                      "watched, and neither the action journal nor the engine's last 256 "
                      "events say whether on purpose", "none")

"""Run one call per engine at once and stop waiting at a deadline.

Each call runs on a daemon thread of its own, so a call stuck on a black-holed or stopped engine
never holds the caller: at the deadline its engine's :class:`Outcome` says "no answer", and the
thread ends when its own socket timeout (the engine's ``timeout``) fires, or with the process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..base.errors import OpsKitError

__all__ = ["Outcome", "fan_out"]

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What one engine gave: its value, or why there is none.

    Attributes:
        engine: the engine's name in the fleet.
        ok: the call returned in time.
        seconds: how long it took (the deadline when it did not answer).
        value: what the call returned (None unless ``ok``).
        error: why not, in words (empty when ``ok``); ``timed_out`` says the deadline passed.
        timed_out: no answer within the deadline (the call may still be running).
        exception: the exception the call raised, if it did.
    """

    engine: str
    ok: bool
    seconds: float
    value: T | None = None
    error: str = ""
    timed_out: bool = False
    exception: BaseException | None = None


def fan_out(calls: Mapping[str, Callable[[], T]], deadline: float) -> dict[str, Outcome[T]]:
    """Call each of ``calls`` (engine name -> call) at once; wait at most ``deadline`` seconds.

    Returns:
        One :class:`Outcome` per engine, in the order of ``calls``. An opskit error is reported
        by its message (its hint included); any other exception by its type and text.
    """
    results: dict[str, Outcome[T]] = {}
    finished = threading.Condition()
    started = time.monotonic()

    def run(name: str, call: Callable[[], T]) -> None:
        t0 = time.monotonic()
        outcome: Outcome[T]
        try:
            value = call()
            outcome = Outcome(name, True, time.monotonic() - t0, value)
        except OpsKitError as exc:
            outcome = Outcome(name, False, time.monotonic() - t0, error=str(exc), exception=exc)
        except Exception as exc:  # reported in the engine's row; the others carry on
            outcome = Outcome(name, False, time.monotonic() - t0,
                              error=f"{type(exc).__name__}: {exc}", exception=exc)
        with finished:
            results[name] = outcome
            finished.notify_all()

    for name, call in calls.items():
        threading.Thread(target=run, args=(name, call), name=f"opskit-fleet-{name}",
                         daemon=True).start()
    end = started + deadline
    with finished:
        while len(results) < len(calls):
            left = end - time.monotonic()
            if left <= 0:
                break
            finished.wait(left)
        done = dict(results)
    late = f"no answer within {deadline:g} s (the engine may be stopped, black-holed or busy)"
    return {name: done.get(name) or Outcome(name, False, deadline, error=late, timed_out=True)
            for name in calls}

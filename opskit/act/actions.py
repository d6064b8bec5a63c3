"""The action journal: every action opskit took, by whom, on what, why, and how it went.

One JSON line per action, appended and fsync'd before the call returns, so a watchdog killed
with SIGKILL in the middle of a recovery leaves every finished action on disk (and at most one
``started`` line without its ``done`` twin, which :func:`read_actions` reports as
``interrupted``). Manual actions (``ops.restart``, the board's buttons) are journaled the same way
as the watchdog's.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base.durable import AppendLog, state_dir

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ACTION_COLUMNS", "ActionJournal", "ActionRecord", "default_actor", "read_actions"]

ACTION_COLUMNS = ["ts", "id", "phase", "actor", "action", "container_id", "container", "service",
                  "reason", "finding_key", "state_before", "state_after", "result", "error",
                  "duration_s", "detected_at", "host", "details"]


def default_actor() -> str:
    """``user@host`` of this process: who acted, when a person did."""
    try:
        user = getpass.getuser()
    except Exception:
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class ActionRecord:
    """One line of the action journal.

    Attributes:
        ts: Unix time of the line; id: the action's id (shared by its started/done lines).
        phase: ``started`` or ``done``.
        actor: who or what acted (``alice@host``, ``watchdog:3f2a@host``).
        action: the verb (``restart``, ``recreate``, ``stop``...).
        container_id: full ID; container and service: names.
        reason: why (a finding's kind, or ``manual``); finding_key ties it to the incident.
        state_before, state_after: the container's state around the action.
        result: ``ok``, ``failed``, ``skipped``, ``dry-run``, ``handled-by-peer``, ``quarantined``.
        error: the error's message when failed; duration_s: seconds taken.
        detected_at: Unix time the failure was detected (for time-to-recover).
        details: small extra facts (attempt number, delay, verify time).
    """

    ts: float
    id: str
    phase: str
    actor: str
    action: str
    container_id: str
    container: str
    service: str = ""
    reason: str = "manual"
    finding_key: str = ""
    state_before: str = ""
    state_after: str = ""
    result: str = ""
    error: str = ""
    duration_s: float = 0.0
    detected_at: float | None = None
    host: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_line(self) -> str:
        """The JSON line."""
        return json.dumps(asdict(self), separators=(",", ":"), default=str)


class ActionJournal:
    """The durable action journal of one host (``state_dir()/actions/<host>.jsonl``).

    Every process acting on the host (watchers, ``opskit restart``, notebooks) appends to the
    same file: each line is written and fsync'd under the file's ``flock``
    (:class:`~opskit.base.durable.AppendLog`), so lines are never interleaved or cut, and one file
    per host is all a reader reads.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, host: str = "",
                 actor: str | None = None) -> None:
        if path is None:
            slug = "".join(c if c.isalnum() else "_" for c in (host or "local"))[-80:]
            path = state_dir() / "actions" / f"{slug}.jsonl"
        self.path = Path(path)
        self.host = host
        self.actor = actor or default_actor()
        self._log = AppendLog(self.path)

    def begin(self, action: str, container_id: str, container: str, **kw: Any) -> ActionRecord:
        """Write the ``started`` line of an action and return it (fsync'd).

        Raises:
            StorageError: the journal cannot be written (the action must not go ahead).
        """
        rec = ActionRecord(ts=time.time(), id=uuid.uuid4().hex[:16], phase="started",
                           actor=kw.pop("actor", self.actor), action=action,
                           container_id=container_id, container=container, host=self.host, **kw)
        self._log.append([rec.to_line()], sync=True)
        return rec

    def finish(self, started: ActionRecord, result: str, **kw: Any) -> ActionRecord:
        """Write the ``done`` line of an action begun with :meth:`begin` (fsync'd)."""
        fields = asdict(started)
        fields.update(kw)
        fields.update(ts=time.time(), phase="done", result=result,
                      duration_s=kw.get("duration_s", time.time() - started.ts))
        rec = ActionRecord(**fields)
        self._log.append([rec.to_line()], sync=True)
        return rec

    def note(self, action: str, container_id: str, container: str, result: str,
             **kw: Any) -> ActionRecord:
        """Write a single ``done`` line for a decision that needs no engine call
        (``skipped``, ``quarantined``, ``handled-by-peer``, ``dry-run``)."""
        rec = ActionRecord(ts=time.time(), id=uuid.uuid4().hex[:16], phase="done",
                           actor=kw.pop("actor", self.actor), action=action,
                           container_id=container_id, container=container, result=result,
                           host=self.host, **kw)
        self._log.append([rec.to_line()], sync=True)
        return rec

    def frame(self) -> pd.DataFrame:
        """Every action so far as a DataFrame; see :func:`read_actions`."""
        return read_actions(self.path)

    def close(self) -> None:
        """Close the file."""
        self._log.close()


def read_actions(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read an action journal: one row per action (its ``done`` line, else its ``started`` line
    marked ``interrupted``), with ts as UTC datetimes."""
    import pandas as pd

    rows: dict[str, dict[str, Any]] = {}
    p = Path(path)
    if p.exists():
        with p.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    data = json.loads(line)
                except ValueError:
                    continue  # a line another process is writing right now: read it later
                if data.get("phase") == "started":
                    rows.setdefault(data["id"], {**data, "result": "interrupted"})
                else:
                    rows[data["id"]] = data
    frame = pd.DataFrame(list(rows.values()), columns=ACTION_COLUMNS)
    frame["ts"] = pd.to_datetime(frame["ts"], unit="s", utc=True).astype("datetime64[ns, UTC]")
    frame["detected_at"] = pd.to_datetime(frame["detected_at"], unit="s", utc=True).astype(
        "datetime64[ns, UTC]")
    for col in ("action", "container", "service", "reason", "result", "actor"):
        frame[col] = frame[col].astype("category")
    frame["duration_s"] = frame["duration_s"].astype("float64")
    return frame.sort_values("ts", ignore_index=True)

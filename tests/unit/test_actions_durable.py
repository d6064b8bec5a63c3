"""The action journal: fsync'd lines, interrupted actions, two processes writing one file.

The file-level guarantees (a full disk, the lock) are tested in test_durable.py; manual actions
journaled by a real engine in ../engine/test_actions_durable.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from opskit.act.actions import ActionJournal, read_actions


def test_interrupted_action_is_reported(tmp_path: Path) -> None:
    journal = ActionJournal(tmp_path / "a.jsonl", host="h", actor="tester")
    done = journal.begin("restart", "c" * 64, "web")
    journal.finish(done, "ok")
    journal.begin("restart", "d" * 64, "api")  # the process dies here
    journal.close()
    frame = read_actions(tmp_path / "a.jsonl")
    assert list(frame["result"].astype(str)) == ["ok", "interrupted"]
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"


def test_two_processes_journal_500_actions_each(tmp_path: Path) -> None:
    """Two watchers on one host share the action journal: no line is interleaved or cut."""
    path, go = tmp_path / "actions.jsonl", tmp_path / "go"
    script = textwrap.dedent(f"""
        import os, sys, time
        from opskit.act.actions import ActionJournal
        journal = ActionJournal({str(path)!r}, host="h", actor=sys.argv[1])
        while not os.path.exists({str(go)!r}):
            time.sleep(0.001)
        for i in range(250):
            rec = journal.begin("restart", "c" * 64, f"web-{{i}}", reason="crash" * (i % 50))
            journal.finish(rec, "ok", details={{"i": i}})
        journal.close()
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, actor]) for actor in ("a", "b")]
    go.touch()
    assert [p.wait(120) for p in procs] == [0, 0]
    lines = path.read_text().splitlines()
    rows = [json.loads(line) for line in lines]  # every line parses
    assert len(rows) == 1000
    for actor in ("a", "b"):
        mine = [r for r in rows if r["actor"] == actor]
        assert len(mine) == 500 and [r["phase"] for r in mine] == ["started", "done"] * 250
    frame = read_actions(path)
    assert len(frame) == 500 and set(frame["result"].astype(str)) == {"ok"}

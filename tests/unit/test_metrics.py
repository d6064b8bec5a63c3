"""Metrics from the action journal: what counts as an incident and its recovery times."""

from __future__ import annotations

import time

from opskit.act.actions import ActionJournal
from opskit.analysis.metrics import incidents_by_kind, recovery_times


def test_only_automatic_recoveries_are_incidents(tmp_path) -> None:
    journal = ActionJournal(tmp_path / "actions.jsonl", host="unix:///var/run/docker.sock")
    cid = "c" * 64
    failed_at = time.time() - 2.0
    injected = journal.begin("chaos:crash", cid, "web-1", reason="chaos")
    journal.finish(injected, "ok", details={"fault_id": "f1"})
    manual = journal.begin("restart", cid, "web-1", reason="manual")
    journal.finish(manual, "ok")
    auto = journal.begin("restart", cid, "web-1", actor="watchdog:1@h", reason="exited_nonzero",
                         detected_at=failed_at + 0.01)
    journal.finish(auto, "ok", details={"attempt": 1, "failed_at": failed_at,
                                        "time_to_recover_s": 1.5})
    journal.note("restart", cid, "web-1", "quarantined", reason="crash_loop")
    times = recovery_times(journal.frame())
    assert list(times["reason"]) == ["exited_nonzero"]
    assert abs(times["time_to_detect_s"][0] - 0.01) < 1e-3
    assert times["time_to_recover_s"][0] == 1.5
    kinds = incidents_by_kind(journal.frame())
    assert set(kinds.index) == {"exited_nonzero", "crash_loop"}
    assert kinds.loc["exited_nonzero", "ok"] == 1 and kinds.loc["crash_loop", "quarantined"] == 1

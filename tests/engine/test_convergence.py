"""Recovery converges: a watched service never stays down while there is something left to try.

Each test reproduces a situation in which the event-driven watchdog used to leave a service down
(a failure before it started, a chain of crashes, a dependency outage, a fault a restart cannot
cure, leases left behind) and asserts on what the engine did, read from an independent observer
after its catch-up barrier, with the observer's own error empty.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

import opskit
from opskit.base import labels as L
from opskit.recover.watchdog import Watchdog
from opskit.spec.policy import RecoveryPolicy
from tests.support.live import deploy_web
from tests.support.session import unique, until

pytestmark = pytest.mark.engine

def web(ops: opskit.Ops, name: str, **kw: Any) -> str:
    return deploy_web(ops, name, retries=2, timeout=30, **kw)


def healthy(ops: opskit.Ops, name: str) -> bool:
    frame = ops.containers()
    row = frame[frame["name"].astype(str) == name]
    return bool(len(row)) and str(row["state"].iloc[0]) == "running" and \
        str(row["health"].iloc[0]) == "healthy"


def leases(ops: opskit.Ops) -> list[str]:
    """Lease containers of the scope, as ``docker ps -a`` lists them."""
    return [c["Names"][0] for c in ops.engine.api.containers(all=True, filters={"label": [
        f"{L.ROLE}=lease", f"{L.SCOPE}={ops.engine.scope}"]})]


def done(wd: Watchdog, result: str = "ok") -> list[str]:
    frame = wd.actions()
    return list(frame[frame["result"].astype(str) == result]["action"].astype(str))


def test_a_failure_before_the_watchdog_started_is_recovered(clean, demo, observer,
                                                            watchdog) -> None:
    ops, name = clean, unique("before")
    cid = web(ops, name)
    ops.chaos("crash", name)  # kill -9 of its process from the host: no API kill
    observer.wait_for("die", cid)
    until(lambda: not healthy(ops, name), what="the container down")
    wd = watchdog([name])
    until(lambda: done(wd) == ["restart"], timeout=30, what="recovered by the new watchdog")
    assert healthy(ops, name)
    observer.barrier()
    assert observer.error is None
    assert observer.count("restart", cid) == 1, observer.actions(cid)
    row = wd.actions().iloc[-1]
    assert (row["action"], row["result"], row["reason"]) == ("restart", "ok", "exited_nonzero")


def test_stops_on_purpose_before_the_watchdog_are_left_and_the_unknown_said(
        clean, demo, observer, watchdog) -> None:
    """opskit's own stop (the action journal) and a docker stop the engine still remembers
    are on purpose; a stop the engine forgot (its 256 events overflowed) is left down and
    reported by status(), never started."""
    ops, mine, theirs, lost = clean, unique("mine"), unique("theirs"), unique("lost")
    ids = {n: web(ops, n) for n in (mine, theirs, lost)}
    busy = web(ops, unique("noise"))
    ops.engine.api.stop(ids[lost], timeout=1)  # a person's docker stop, outside opskit
    for _ in range(100):  # 300 exec events: the engine forgets the stop of `lost`
        ops.engine.api.exec_start(ops.engine.api.exec_create(busy, ["true"])["Id"])
    ops.stop(mine, timeout=1)
    ops.engine.api.stop(ids[theirs], timeout=1)  # remembered by the engine
    wd = watchdog([mine, theirs, lost])
    status = until(lambda: wd.status() if lost in wd.status()["left_down"] else None,
                   timeout=20, what="the unknown stop reported")
    assert "256" in status["left_down"][lost]
    assert set(status["stopped_on_purpose"]) == {mine, theirs}, status
    assert "through opskit" in status["stopped_on_purpose"][mine]
    assert "engine events" in status["stopped_on_purpose"][theirs]
    time.sleep(2)
    observer.barrier()
    assert observer.error is None
    for name, cid in ids.items():
        assert observer.count("start", cid) == 1, (name, observer.actions(cid))  # deploy's
    skipped = wd.actions()
    assert set(skipped["result"].astype(str)) == {"skipped"}, skipped
    assert [a.kind for a in wd.alerts] == ["left_down"]
    assert wd.recover_now(lost) == [lost], "a person can still start it"
    until(lambda: healthy(ops, lost), timeout=30, what="recovered on request")


def test_five_host_kills_in_a_row_are_all_recovered(clean, demo, observer, watchdog) -> None:
    """A chain of crashes (a crash loop by the rules) never blocks the next recovery."""
    ops, name = clean, unique("five")
    cid = web(ops, name)
    wd = watchdog([name], policy=RecoveryPolicy(max_attempts=20, window="10m",
                                                 backoff_initial=0.5, jitter=0))
    for i in range(1, 6):
        observer.wait_for("health_status: healthy", cid, timeout=30, n=i)
        ops.chaos("crash", name)
        observer.wait_for("die", cid, n=i)
        until(lambda i=i: len(done(wd)) == i, timeout=60, what=f"recovery {i}")
    until(lambda: healthy(ops, name), timeout=30, what="healthy at the end")
    observer.barrier()
    assert observer.error is None
    assert observer.count("die", cid) == 5 and observer.count("restart", cid) == 5
    assert not wd.status()["quarantined"]
    assert leases(ops) == [], "each lease released once its action was verified"


def test_a_dependency_outage_heals_without_a_person(clean, demo, observer, watchdog) -> None:
    """An app that exits while its dependency is down: the fast budget is spent in seconds,
    quarantine is flagged and alerted, slow retries go on (bounded starts), and once the
    dependency is back the app is healthy again with nobody acknowledging anything."""
    ops, net, db, app = clean, unique("net"), unique("db"), unique("app")
    web(ops, db, networks=[net])
    # busybox wget crashes resolving a name (static NSS) and with -T: resolve with nslookup
    check = (f"wget -q -O /dev/null http://$(nslookup {db} 127.0.0.11 2>/dev/null | "
             "awk '/^Address: /{print $2}' | tail -n1):8080/health")
    web(ops, app, networks=[net],
        command=["sh", "-c", f"{check} || exit 1; httpd -p 8080 -h /www; "
                 f"while {check}; do sleep 0.5; done; echo lost {db}; exit 1"])
    policy = RecoveryPolicy(max_attempts=3, backoff_initial=0.5, jitter=0, verify_timeout=5,
                            quarantine_retry=8)
    wd = watchdog([app], policy=policy)
    ops.stop(db, timeout=1)
    outage_from = time.monotonic()
    until(lambda: app in wd.status()["quarantined"], timeout=40, what="quarantine")
    while time.monotonic() - outage_from < 42:
        time.sleep(0.5)
    observer.barrier()
    down_at = observer.select("stop", db)[-1]["timeNano"]
    starts = [e for e in observer.select("start", type="container")
              if e["Actor"]["Attributes"].get("name") == app and e["timeNano"] > down_at]
    # three fast attempts, then one every 8 s at most (a recreate's new container included)
    assert 3 <= len(starts) <= 3 + 42 // 8 + 2, [e["timeNano"] for e in starts]
    ops.start(db)
    back = time.monotonic()
    until(lambda: healthy(ops, app), timeout=40, what="the app healthy again by itself")
    assert time.monotonic() - back < 40
    assert observer.error is None
    # the listing may show it healthy a moment before the verify ends and says so
    until(lambda: wd.alerts and wd.alerts[-1].kind == "recovered", timeout=30,
          what="the recovered alert")
    assert "quarantined" in [a.kind for a in wd.alerts]
    assert app in wd.status()["quarantined"], "flagged until a healthy period or a person"
    assert wd.actions()["result"].astype(str).isin(["ok"]).any()


def test_a_dependant_waits_for_its_dependency_without_spending_its_budget(
        clean, demo, observer, watchdog) -> None:
    """An app that declares ``depends_on`` is not restarted while its dependency is down (a
    person stopped it): no attempt, no quarantine, ``status()["waiting"]`` says why; it is
    started as soon as the dependency is healthy again, not on the next re-list."""
    ops, net, db, app = clean, unique("net"), unique("db"), unique("app")
    web(ops, db, networks=[net])
    check = (f"wget -q -O /dev/null http://$(nslookup {db} 127.0.0.11 2>/dev/null | "
             "awk '/^Address: /{print $2}' | tail -n1):8080/health")
    app_id = web(ops, app, networks=[net], depends_on=[db],
                 command=["sh", "-c", f"{check} || exit 1; httpd -p 8080 -h /www; "
                          f"while {check}; do sleep 0.5; done; exit 1"])
    wd = watchdog([db, app], relist_every=60)
    ops.stop(db, timeout=1)
    until(lambda: app in wd.status()["waiting"], timeout=30, what="the app waiting")
    time.sleep(3)
    assert observer.count("start", app_id) == 1 and not wd.status()["quarantined"]
    ops.start(db)
    until(lambda: done(wd) == ["restart"], timeout=30, what="the app back once db is healthy")
    assert healthy(ops, app)
    assert observer.count("start", app_id) == 2, "one start, right after the dependency"
    frame = wd.actions()
    whys = [str(d.get("why", "")) for d in frame["details"]]
    assert any(w.startswith(f"its dependency {db} is down") for w in whys), whys


def test_dependants_are_restarted_after_their_dependency_is_recovered(
        clean, demo, observer, watchdog) -> None:
    ops, db, app = clean, unique("db"), unique("app")
    db_id = web(ops, db)
    app_id = web(ops, app, depends_on={db: {"restart": True}})
    wd = watchdog([db, app])
    ops.chaos("crash", db)
    until(lambda: "restart" in done(wd) and len(done(wd)) >= 2, timeout=60,
          what="the db and its dependant restarted")
    observer.barrier()
    assert observer.error is None
    assert observer.count("restart", db_id) == 1 and observer.count("restart", app_id) == 1
    db_healthy = observer.select("health_status: healthy", db_id)[-1]["timeNano"]
    app_restart = observer.select("restart", app_id)[-1]["timeNano"]
    assert app_restart > db_healthy, "the dependant after its dependency is healthy"
    reasons = list(wd.actions()["reason"].astype(str))
    assert reasons == ["exited_nonzero", "dependency_recovered"], reasons


def test_a_hang_is_cured_by_a_restart_and_a_corruption_by_a_recreate(
        clean, demo, observer, watchdog) -> None:
    ops, name = clean, unique("ladder")
    cid = web(ops, name)
    wd = watchdog([name], policy=RecoveryPolicy(verify_timeout=20, backoff_initial=0.5,
                                                 jitter=0))
    ops.chaos("unhealthy", name)  # httpd hung: a restart cures it
    until(lambda: done(wd) == ["restart"], timeout=60, what="the hang restarted")
    until(lambda: healthy(ops, name), timeout=30, what="healthy after the restart")
    ops.chaos("corrupt", name)  # the health file gone: only a fresh container cures it
    until(lambda: done(wd) == ["restart", "recreate"], timeout=90, what="the recreate")
    until(lambda: healthy(ops, name), timeout=30, what="healthy after the recreate")
    observer.barrier()
    assert observer.error is None
    new_id = ops.inspect(name).id
    assert new_id != cid and observer.count("destroy", cid) == 1
    assert observer.count("restart", cid) == 2, observer.actions(cid)
    frame = wd.actions()
    assert list(frame["result"].astype(str)) == ["ok", "failed", "ok"], frame
    assert ops.inspect(name).labels[L.SPEC_HASH], "the new container carries its spec"
    wd.stop()
    assert leases(ops) == []
    assert [c for c in ops.containers()["name"].astype(str) if c.startswith(f"{name}.old-")] \
        == [], "the old container set aside by the recreate is removed"

"""The watchdog on the real engine: a crash loop ends in quarantine after its budget, an OOM
kill is classified with its limit, a flapping healthcheck is one incident, two watchdogs act
once per incident; intentional stops, the engine's own restarts, and a watchdog killed in the
middle of a recovery.

What the engine did is read from an independent observer, not from opskit's own records.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest
import requests

import opskit
from opskit.act.actions import ActionJournal, read_actions
from opskit.recover.watchdog import Watchdog
from opskit.spec.policy import RecoveryPolicy
from tests.support.live import deploy_web
from tests.support.session import SESSION, TEST_LABEL, unique, until

pytestmark = pytest.mark.engine

def web(ops: opskit.Ops, name: str, **kw: Any) -> str:
    return deploy_web(ops, name, retries=1, timeout=20, **kw)


def results(wd: Any) -> list[tuple[str, str]]:
    frame = wd.actions()
    return [(str(a), str(r)) for a, r in zip(frame["action"], frame["result"], strict=True)]


def test_crash_is_recovered_once_and_recorded(clean, demo, observer, watchdog) -> None:
    ops, name = clean, unique("crash")
    cid = web(ops, name)
    wd = watchdog([name], policy=RecoveryPolicy(max_attempts=3, window="1m"))
    ops.chaos("crash", name)
    until(lambda: ("restart", "ok") in results(wd), what="a recorded recovery")
    assert ops.inspect(cid).state == "running" and ops.inspect(cid).health == "healthy"
    assert observer.count("restart", cid) == 1, "exactly one restart request"
    row = wd.actions().iloc[-1]
    assert row["reason"] == "exited_nonzero" and row["container_id"] == cid
    assert 0 < row["details"]["time_to_recover_s"] < 10
    evidence = row["details"]["evidence"]
    assert evidence and os.path.exists(evidence), "evidence written before acting"


def test_unhealthy_is_restarted(clean, demo, observer, watchdog) -> None:
    ops, name = clean, unique("sick")
    cid = web(ops, name)
    wd = watchdog([name], policy=RecoveryPolicy(verify_timeout=3))
    ops.exec(name, ["make-unhealthy"])
    until(lambda: ("restart", "ok") in results(wd) or ("restart", "failed") in results(wd),
          what="an action on the unhealthy container")
    assert observer.count("restart", cid) >= 1
    assert wd.actions().iloc[0]["reason"] == "unhealthy"


def test_intentional_stops_and_pauses_are_left_alone(clean, demo, observer, watchdog) -> None:
    ops, stopped, paused = clean, unique("stopped"), unique("paused")
    sid, pid = web(ops, stopped), web(ops, paused)
    wd = watchdog([stopped, paused])
    observer.wait_for("start", sid)  # the deploy's own start has reached the observer
    time.sleep(0.5)
    starts = observer.count("start", sid)
    ops.stop(stopped, timeout=1)
    ops.pause(paused)
    time.sleep(3)
    assert observer.count("start", sid) == starts, (observer.actions(sid),
                                                    wd.actions().to_dict("records"))
    assert observer.count("restart", sid) == 0
    assert observer.count("unpause", pid) == 0 and observer.count("restart", pid) == 0
    # states from the listing: an inspect of a container paused while its probe starts can wait
    # 30 s on this engine (see opskit.base.errors.EngineTimeout)
    states = dict(zip(ops.containers()["id"], ops.containers()["state"], strict=True))
    assert states[sid] == "exited" and states[pid] == "paused"
    ops.unpause(paused)


def test_a_stop_is_told_from_a_crash_when_the_watchdogs_inspects_fail(
        clean, demo, observer, watchdog, monkeypatch) -> None:
    """The kill events of a ``docker stop`` reach the watchdog while its inspects time out (a
    loaded engine): they are kept all the same, so the die that follows is read as the stop it
    is, and the container is left down."""
    ops, name = clean, unique("stopslow")
    cid = web(ops, name)
    wd = watchdog([name])
    observer.wait_for("start", cid)
    until(lambda: any(t.info.id == cid for t in wd._tracked.values()), what="tracked")
    starts, failing = observer.count("start", cid), threading.Event()
    real = wd.engine.api.inspect_container

    def slow_inspect(*args: Any, **kw: Any) -> Any:
        if failing.is_set() and threading.current_thread() is not threading.main_thread():
            raise requests.exceptions.ReadTimeout("read timed out (test)")
        return real(*args, **kw)

    monkeypatch.setattr(wd.engine.api, "inspect_container", slow_inspect)
    failing.set()
    ops.stop(name, timeout=1)
    observer.wait_for("die", cid)
    time.sleep(0.3)  # the die reaches the watchdog, decided from the event alone
    failing.clear()
    time.sleep(3)  # passes that inspect again, and any backoff of a wrong decision
    assert observer.count("start", cid) == starts, wd.actions().to_dict("records")
    assert ops.inspect(cid).state == "exited"


def test_engine_restart_policy_is_not_fought(clean, demo, observer, watchdog) -> None:
    ops, name = clean, unique("policy")
    dep = ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-crash:latest",
                                        env={"CRASH_AFTER": "1.5", "CRASH_CODE": "3"},
                                        restart="on-failure:3", labels={TEST_LABEL: SESSION}),
                     wait="running")
    wd = watchdog([name])
    until(lambda: observer.count("die", dep.ids[0]) >= 3, timeout=30, what="three crashes")
    time.sleep(1)
    assert observer.count("restart", dep.ids[0]) == 0, "opskit never restarted it itself"
    assert ("restart", "ok") not in results(wd) and ("restart", "failed") not in results(wd)


def test_crash_loop_ends_in_quarantine_after_the_budget(clean, demo, observer, watchdog) -> None:
    """A crash loop: backoff growing, a budget of attempts, then quarantine; with
    ``quarantine_retry=None`` no action at all until acknowledged."""
    ops, name = clean, unique("loop")
    dep = ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-crash:latest",
                                        env={"CRASH_AFTER": "0.3", "CRASH_CODE": "2"},
                                        labels={TEST_LABEL: SESSION}), wait=None)
    wd = watchdog([name], policy=RecoveryPolicy(max_attempts=4, window="5m",
                                                 backoff_initial=0.5, backoff_factor=2,
                                                 jitter=0, verify_timeout=3, ladder=["restart"],
                                                 quarantine_retry=None))
    until(lambda: name in wd.status()["quarantined"], timeout=60, what="quarantine")
    acted = wd.actions()
    restarts = acted[(acted["action"].astype(str) == "restart")
                     & acted["result"].astype(str).isin(["ok", "failed"])]
    budget = -(-4 // 2) if set(restarts["reason"].astype(str)) == {"crash_loop"} else 4
    assert len(restarts) <= 4 and observer.count("restart", dep.ids[0]) == len(restarts)
    assert len(restarts) >= budget - 1
    gaps = restarts["ts"].diff().dt.total_seconds().dropna().tolist()
    assert all(b >= a * 0.9 for a, b in itertools.pairwise(gaps)), gaps
    time.sleep(3)
    assert observer.count("restart", dep.ids[0]) == len(restarts), "no action in quarantine"
    assert "quarantined" in {result for _, result in results(wd)}
    assert wd.acknowledge(name) == [name]


def test_oom_kill_is_classified_with_its_limit(clean, demo, watchdog) -> None:
    """An OOM kill is found as one, with the memory limit in its evidence, and retried only
    a bounded number of times before quarantine."""
    ops, name = clean, unique("oom")
    ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-hog:latest", memory="16m",
                                  labels={TEST_LABEL: SESSION}), wait=None)
    wd = watchdog([name], policy=RecoveryPolicy(max_attempts=2, window="5m", verify_timeout=3,
                                                 jitter=0, backoff_initial=0.5,
                                                 ladder=["restart"]))
    found = until(lambda: [f for f in wd.findings() if f.kind == "oom_killed"]
                  or [f for f in ops.diagnose(name) if f.kind == "oom_killed"], timeout=30,
                  what="an OOM finding")
    assert found[0].evidence.get("memory_limit") == 16 * 1024 * 1024
    until(lambda: name in wd.status()["quarantined"], timeout=60, what="bounded retries")
    acted = wd.actions()
    acted = acted[acted["result"].astype(str).isin(["ok", "failed"])]
    # decided from the `die` event (exit 137) before the engine says why; the evidence's
    # inspect says OOMKilled, so the journal names the OOM kill
    assert len(acted) and set(acted["reason"].astype(str)) <= {"oom_killed", "crash_loop"}, \
        acted[["reason", "result"]]


def test_flapping_is_one_incident_with_a_flap_count(clean, demo, watchdog) -> None:
    """A flapping healthcheck: hysteresis gives one incident with a flap count, not one
    incident per flap."""
    ops, name = clean, unique("flap")
    ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-flap:latest",
                                  env={"FLAP_PERIOD": "1.5"}, labels={TEST_LABEL: SESSION}),
               wait="healthy", timeout=20)
    wd = watchdog([name], policy=RecoveryPolicy(action="none"))
    seen: set[str] = set()
    deadline = time.monotonic() + 12
    flaps = 0
    while time.monotonic() < deadline:
        for f in wd.findings():
            if f.kind == "unhealthy":
                seen.add(f.key)
                flaps = max(flaps, int(f.evidence.get("flaps", 0)))
        time.sleep(0.2)
    assert len(seen) == 1, seen
    assert flaps >= 2


def test_two_watchdogs_act_once_per_incident(clean, demo, observer, watchdog) -> None:
    """Two watchdogs see the same crash: exactly one restart (the engine's own count), and
    the other records that its peer handled it."""
    ops, name = clean, unique("twice")
    cid = web(ops, name)
    first, second = watchdog([name]), watchdog([name])
    ops.chaos("crash", name)
    peer = {("restart", "handled-by-peer"), ("restart", "skipped")}  # held, or over by then
    until(lambda: ("restart", "ok") in results(first) + results(second)
          and peer & set(results(first) + results(second)),
          what="one recovery and one peer note")
    both = results(first) + results(second)
    assert both.count(("restart", "ok")) == 1 and peer & set(both), both
    time.sleep(1)
    observer.barrier()
    assert observer.error is None
    assert observer.count("restart", cid) == 1


def test_watchdog_killed_mid_recovery_leaves_one_record_per_action(clean, demo,
                                                                   tmp_path) -> None:
    ops, name = clean, unique("sigkill")
    web(ops, name)
    actions_path = tmp_path / "actions.jsonl"
    script = textwrap.dedent(f"""
        import time, opskit
        from opskit.act.actions import ActionJournal
        from opskit.spec.policy import RecoveryPolicy
        from opskit.recover.watchdog import Watchdog
        ops = opskit.connect(scope={ops.engine.scope!r})
        wd = Watchdog(ops.engine, services=[{name!r}],
                      actions=ActionJournal({str(actions_path)!r}),
                      policy=RecoveryPolicy(verify_timeout=60)).start()
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy())
    try:
        time.sleep(3)
        ops.exec(name, ["make-corrupt"])  # survives a restart: verification will wait
        until(lambda: actions_path.exists() and '"phase":"started"' in actions_path.read_text(),
              timeout=30, what="a started recovery")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    frame = read_actions(actions_path)
    assert list(frame["result"].astype(str)) == ["interrupted"]
    again = Watchdog(ops.engine, services=[name], actions=ActionJournal(actions_path),
                     policy=RecoveryPolicy(verify_timeout=5)).start()
    try:
        until(lambda: len(read_actions(actions_path)) >= 2, timeout=90,
              what="the restarted watchdog's own record")
    finally:
        again.stop()
    frame = read_actions(actions_path)
    assert frame["id"].is_unique and str(frame["result"].iloc[0]) == "interrupted"
    assert list(frame["result"].astype(str)).count("interrupted") == 1, "one record per action"


def test_each_recovery_leaves_an_incident_bundle(clean, demo, watchdog) -> None:
    ops, name = clean, unique("bundled")
    web(ops, name)
    wd = watchdog([name], record_bundles=True)
    ops.chaos("crash", name)
    until(lambda: ("restart", "ok") in results(wd), what="a recovery")
    until(lambda: wd.bundles, timeout=60, what="the incident bundle")
    bundle = opskit.open_bundle(wd.bundles[0])
    assert name in set(bundle.containers["name"].astype(str))
    assert "restart" in set(bundle.actions["action"].astype(str))


def flap(ops: opskit.Ops, name: str) -> str:
    """demo-flap without a period: make-unhealthy makes it fail, and a restart cures it."""
    spec = opskit.ServiceSpec(name=name, image="opskit/demo-flap:latest",
                              healthcheck={"test": ["CMD", "test", "-f", "/tmp/ok"],
                                           "interval": 0.5, "retries": 1},
                              labels={TEST_LABEL: SESSION})
    return ops.deploy(spec, wait="healthy", timeout=20).ids[0]


def test_a_second_failure_within_the_flap_window_is_acted_on(clean, demo, observer,
                                                              watchdog) -> None:
    """After a cure, failing again within the flap window (same incident key) is recovered
    again, paced by the backoff, rather than ignored as already decided."""
    ops, name = clean, unique("again")
    cid = flap(ops, name)
    wd = watchdog([name], policy=RecoveryPolicy(max_attempts=5, window="5m", jitter=0,
                                                 backoff_initial=0.2, verify_timeout=10))
    for round_ in (1, 2):
        ops.exec(name, ["make-unhealthy"])
        until(lambda r=round_: results(wd).count(("restart", "ok")) == r, timeout=30,
              what=f"recovery {round_}")
    acted = wd.actions()
    acted = acted[acted["result"].astype(str) == "ok"]
    assert list(acted["reason"].astype(str)) == ["unhealthy", "unhealthy"]
    assert observer.count("restart", cid) == 2
    assert ops.inspect(cid).health == "healthy"


def test_crash_loop_attempts_follow_the_backoff_not_the_relist(clean, demo, watchdog) -> None:
    """A crash during the verify of the previous attempt is acted on once the backoff has run,
    even when no re-list comes (every 60 s here)."""
    ops, name = clean, unique("paced")
    ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-crash:latest",
                                  env={"CRASH_AFTER": "0.3", "CRASH_CODE": "2"},
                                  labels={TEST_LABEL: SESSION}), wait=None)
    wd = watchdog([name], relist_every=60,
                  policy=RecoveryPolicy(max_attempts=6, window="5m", backoff_initial=0.5,
                                        backoff_factor=2, jitter=0, verify_timeout=2,
                                        ladder=["restart"]))
    until(lambda: name in wd.status()["quarantined"], timeout=40, what="quarantine")
    acted = wd.actions()
    acted = acted[(acted["action"].astype(str) == "restart")
                  & acted["result"].astype(str).isin(["ok", "failed"])].reset_index(drop=True)
    assert len(acted) >= 2, acted
    for i in range(1, len(acted)):
        waited = (acted["ts"][i] - acted["ts"][i - 1]).total_seconds() - \
            float(acted["duration_s"][i])  # from one failed verify to the next start
        # the backoff plus slack for a loaded host, far below the 60 s re-list
        assert waited < 0.5 * 2 ** (i - 1) + 10.0, (i, waited)


def test_policy_precedence_name_then_spec_then_default(clean) -> None:
    """A policy given for a service by name wins; then the spec's recovery; then the default."""
    named, declared, default = (RecoveryPolicy(max_attempts=n) for n in (1, 2, 3))
    specs = {name: opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                                      recovery=declared) for name in ("a", "b")}
    wd = Watchdog(clean.engine, policy={"a": named}, specs=specs)
    assert wd.policy_for("a") is named and wd.policy_for("b") is declared
    assert wd.policy_for("c") == RecoveryPolicy()
    wd = Watchdog(clean.engine, policy=default, specs=specs)
    assert wd.policy_for("a") is declared and wd.policy_for("c") is default
    assert wd.policy is default


def test_ops_watch_follows_the_deployed_spec(clean, demo) -> None:
    ops, name = clean, unique("declared")
    ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest",
                                  labels={TEST_LABEL: SESSION},
                                  recovery={"max_attempts": 7}), wait="running")
    assert ops.watch([name]).policy_for(name).max_attempts == 7


def test_a_decision_gone_stale_is_skipped_not_acted_on(clean, demo, observer) -> None:
    """A crash decided on, but the container runs again (a person started it) by the time the
    lease is taken: nothing is restarted, and the journal says why."""
    from datetime import UTC, datetime

    from opskit.records.findings import Finding
    from opskit.recover.attempt import recover

    ops, name = clean, unique("stale")
    cid = web(ops, name)
    finding = Finding(container_id=cid, container=name, service=name, kind="exited_nonzero",
                      severity="critical", since=datetime.now(UTC), evidence={"exit_code": 1},
                      failure_class="management", hint="a test finding")
    assert recover(ops.engine, finding, policy=RecoveryPolicy(), journal=ops.action_journal,
                   actor="watchdog:test") is None
    row = ops.actions().iloc[-1]
    assert row["result"] == "skipped" and "no longer failing" in row["details"]["why"]
    time.sleep(0.5)
    assert observer.count("restart", cid) == 0 and observer.count("kill", cid) == 0

"""Tests of opskit.observe.journal.EventJournal on real engines: nothing is lost when dockerd
restarts under the journal, when more events come than the engine keeps (256) or a subscriber is
slow, or when the engine stalls with its socket open; two journals on one file write each event
once.

Each test compares the journal with an independent witness: tests/support/observer's
EventObserver (its own client and stream) and ``docker ps -a``. The throwaway dockerd of
tests/support/second_engine is SIGTERMed, SIGKILLed and SIGSTOPped under a running journal;
the main engine only ever sees containers these tests create (labelled with the session).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import pytest

from opskit.engine.connection import Engine, open_engine
from opskit.observe.events import read_journal
from opskit.observe.journal import EventJournal
from opskit.records.journal_file import Record, iter_records
from tests.support.observer import BUSYBOX_IMAGE, EventObserver, build_busybox_image
from tests.support.second_engine import ThrowawayEngine
from tests.support.session import SESSION, TEST_LABEL, unique

pytestmark = [pytest.mark.engine, pytest.mark.slow]

DEMO = "opskit/demo-web:latest"
RUN_LABEL = "opskit-test.run"
NO_THROWAWAY = ThrowawayEngine.unavailable_reason()
needs_throwaway = pytest.mark.skipif(NO_THROWAWAY is not None,
                                     reason=f"throwaway engine: {NO_THROWAWAY}")


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> None:
    """Poll ``check`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g}s: {what}")
        time.sleep(0.05)


def written(journal: EventJournal) -> list[Record]:
    """What the journal has on disk now (after it wrote what it has read)."""
    assert journal.flush(10)
    return list(iter_records(journal.path))


def has(journal: EventJournal, *pairs: tuple[str, str]) -> bool:
    """True when the file holds an event with each (container ID, base action)."""
    seen = {(r.actor_id, r.base_action) for r in written(journal) if r.kind == "event"}
    return set(pairs) <= seen


def observed_key(event: dict[str, Any]) -> tuple[int, str, str, str]:
    return (event["timeNano"], event["Type"], event["Action"], event["Actor"]["ID"])


def ps_states(api: Any, **filters: Any) -> dict[str, str]:
    return {c["Id"]: c["State"] for c in api.containers(all=True, filters=filters)}


def journal_states(journal: EventJournal, ids: set[str] | None = None) -> dict[str, str]:
    return {cid: s["state"] for cid, s in journal.states(removed=False).items()
            if ids is None or cid in ids}


def sleeper(api: Any, image: str, name: str, labels: dict[str, str] | None = None) -> str:
    """``docker create --init IMAGE sleep 3600``: stops at once on SIGTERM, no healthcheck."""
    cid: str = api.create_container(
        image, ["sleep", "3600"], name=name, labels={TEST_LABEL: SESSION, **(labels or {})},
        healthcheck={"test": ["NONE"]}, host_config=api.create_host_config(init=True))["Id"]
    return cid


@pytest.fixture(scope="module")
def throwaway(demo: list[str]) -> Iterator[ThrowawayEngine]:
    """A second dockerd with the demo image, for the whole module."""
    if NO_THROWAWAY is not None:
        pytest.skip(NO_THROWAWAY)
    eng = ThrowawayEngine(f"okj{os.getpid() % 100000}")
    try:
        eng.start()
        eng.load_image(DEMO)
        yield eng
    finally:
        eng.close()


@pytest.fixture
def side(throwaway: ThrowawayEngine) -> Iterator[tuple[Engine, Any]]:
    """An opskit Engine and a docker-py APIClient on the throwaway engine, emptied first."""
    throwaway.start()  # a no-op unless an earlier test left it down
    client = docker.DockerClient(base_url=throwaway.url, timeout=30)
    for item in client.api.containers(all=True):
        client.api.remove_container(item["Id"], force=True)
    engine = open_engine(throwaway.url, scope=f"test-{SESSION}", timeout=5)
    yield engine, client.api
    engine.client.close()
    client.close()


@pytest.fixture(scope="module")
def busybox(demo: list[str]) -> str:
    """The tiny test image on the main engine."""
    client = docker.DockerClient(timeout=60)
    build_busybox_image(client)
    client.close()
    return BUSYBOX_IMAGE


@needs_throwaway
@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_dockerd_restart_loses_nothing(throwaway: ThrowawayEngine, side: tuple[Engine, Any],
                                       tmp_path: Path, how: str) -> None:
    """dockerd restarts (SIGTERM or SIGKILL) while the journal watches: it reconnects, records
    a gap marker, drops duplicates, and its final states equal ``docker ps -a``."""
    engine, api = side
    journal = EventJournal(engine, tmp_path / "journal.jsonl", stall_after=2.0)
    with EventObserver(url=throwaway.url) as obs, journal:
        assert journal.wait_connected(10)
        ids = [sleeper(api, DEMO, unique(f"r1{how[3]}")) for _ in range(3)]
        for cid in ids[:2]:
            api.start(cid)
        wait_until(lambda: has(journal, *[(c, "start") for c in ids[:2]]), 10, "starts")
        before = {r.key for r in written(journal)}
        getattr(throwaway, how)()
        wait_until(lambda: not journal.status()["connected"], 10, "journal notices")
        time.sleep(1.0)  # the engine stays down a while; the journal keeps trying
        assert before <= {r.key for r in written(journal)}  # nothing lost from the file
        assert len(read_journal(journal.path)) == len(written(journal))  # no torn line
        assert journal.running
        throwaway.start()
        wait_until(lambda: journal.status()["connected"], 20, "reconnect")
        api.start(ids[2])
        api.remove_container(ids[0], force=True)
        wait_until(lambda: has(journal, (ids[2], "start"), (ids[0], "destroy")), 10, "after")
        wait_until(lambda: journal_states(journal) == ps_states(api), 10,
                   f"states equal docker ps -a: {journal_states(journal)} {ps_states(api)}")
    status = journal.status()
    assert status["reconnects"] >= 1 and status["gaps"] >= 1
    records = list(iter_records(journal.path))
    events = [r for r in records if r.kind == "event"]
    assert len({r.key for r in events}) == len(events), "duplicate events in the journal"
    gaps = [r for r in records if r.kind == "gap"]
    assert gaps[0].attributes["reason"] == "engine restarted"
    assert gaps[0].attributes["daemon_restart"] == "true"
    assert journal.states()[ids[0]]["state"] == "removed"
    # Nothing the witness saw is missing unless a gap marks where it could be.
    windows = [(int(g.attributes["since_ns"]), int(g.attributes["until_ns"])) for g in gaps]
    keys = {r.key for r in events}
    missing = [e for e in obs.events() if observed_key(e) not in keys
               and not any(a <= e["timeNano"] <= b for a, b in windows)]
    assert missing == []
    assert {r.base_action for r in records if r.kind == "connect"} >= {"connect", "disconnect",
                                                                       "stop"}


@needs_throwaway
def test_stalled_engine_is_cut_and_resumed(throwaway: ThrowawayEngine,
                                           side: tuple[Engine, Any], tmp_path: Path) -> None:
    """A stalled engine: SIGSTOP keeps the socket open but silent; the watchdog's ping fails,
    the stream is cut, the journal reconnects after SIGCONT, and stop() never hangs meanwhile."""
    engine, api = side
    journal = EventJournal(engine, tmp_path / "journal.jsonl", stall_after=1.0)
    other = EventJournal(engine, tmp_path / "other.jsonl", stall_after=60.0)
    with journal:
        other.start()
        assert journal.wait_connected(10) and other.wait_connected(10)
        cid = sleeper(api, DEMO, unique("stall"))
        wait_until(lambda: has(journal, (cid, "create")), 10, "create journaled")
        pid = throwaway.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_until(lambda: journal.status()["stalls"] >= 1, 15, "stall detected")
            assert not journal.status()["connected"]
            started = time.monotonic()
            other.stop()  # its reader is blocked on the silent stream: stop() cuts it
            assert time.monotonic() - started < 5.0
            assert not other.running
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_until(lambda: journal.status()["connected"], 30, "reconnect after SIGCONT")
        api.start(cid)
        wait_until(lambda: has(journal, (cid, "start")), 10, "start after the stall")
        wait_until(lambda: journal_states(journal) == ps_states(api), 10, "states")
    status = journal.status()
    assert status["reconnects"] >= 1 and status["stalls"] >= 1
    records = list(iter_records(journal.path))
    cuts = [r for r in records if r.base_action == "disconnect"]
    assert cuts and cuts[0].attributes["reason"] == "engine unreachable (ping failed)"
    # dockerd only paused: its buffer still held the last event, so no gap is claimed
    assert [r for r in records if r.kind == "gap"] == []
    assert not [t for t in threading.enumerate() if t.name.startswith("opskit-journal")]


@needs_throwaway
def test_resume_from_the_file_replays_what_happened_meanwhile(
        side: tuple[Engine, Any], tmp_path: Path) -> None:
    """A journal restarted on its file resumes from its last event, without duplicates."""
    engine, api = side
    path = tmp_path / "journal.jsonl"
    first = sleeper(api, DEMO, unique("res"))
    with EventJournal(engine, path) as journal:
        assert journal.wait_connected(10)
        api.start(first)
        wait_until(lambda: has(journal, (first, "start")), 10, "start")
    journal.stop()  # idempotent
    api.kill(first)
    second = sleeper(api, DEMO, unique("res"))
    with EventJournal(engine, path) as journal:
        assert journal.wait_connected(10)
        wait_until(lambda: has(journal, (first, "die"), (second, "create")), 10, "replayed")
        assert journal_states(journal) == ps_states(api)
    records = list(iter_records(path))
    events = [r for r in records if r.kind == "event"]
    assert len({r.key for r in events}) == len(events)
    assert [r for r in records if r.kind == "gap"] == []


@needs_throwaway
def test_overrun_buffer_gives_a_gap_and_reconcile_finds_the_lost_die(
        side: tuple[Engine, Any], tmp_path: Path) -> None:
    """More events than the engine keeps: over 256 events while no journal ran push a `die`
    out of the engine's buffer; on resume the journal records a gap and the reconcile still
    says exited."""
    engine, api = side
    path = tmp_path / "journal.jsonl"
    victim, busy = sleeper(api, DEMO, unique("lost")), sleeper(api, DEMO, unique("busy"))
    with EventJournal(engine, path) as journal:
        assert journal.wait_connected(10)
        api.start(victim)
        api.start(busy)
        wait_until(lambda: has(journal, (victim, "start"), (busy, "start")), 10, "starts")
    api.kill(victim)
    with ThreadPoolExecutor(4) as pool:  # 110 execs = 330 events: the die is evicted
        list(pool.map(lambda _: api.exec_start(api.exec_create(busy, ["true"])["Id"]),
                      range(110)))
    with EventJournal(engine, path) as journal:
        assert journal.wait_connected(10)
        assert journal.flush(10)
        assert journal.states()[victim]["state"] == "exited"
        assert journal_states(journal) == ps_states(api)
    records = list(iter_records(path))
    gaps = [r for r in records if r.kind == "gap"]
    assert len(gaps) == 1 and gaps[0].attributes["replayed"] == "256"
    assert gaps[0].attributes["reason"].startswith("journal was not running")
    assert not [r for r in records if r.actor_id == victim and r.base_action == "die"]
    after_gap = records[records.index(gaps[0]):]
    fixes = [r for r in after_gap if r.kind == "reconcile" and r.actor_id == victim]
    assert [(r.attributes["previous"], r.attributes["state"]) for r in fixes] == [
        ("running", "exited")]


def test_slow_subscriber_and_450_exec_events(clean: Any, busybox: str, tmp_path: Path) -> None:
    """A slow consumer: 150 execs (450 events) while a subscriber never reads: the file has
    every exec the witness saw, and the subscriber gets a gap record instead of blocking the
    reader."""
    engine, run = clean.engine, unique("r2")
    api = engine.api
    with EventObserver(url=engine.host, filters={"label": [f"{RUN_LABEL}={run}"]}) as obs, \
            EventJournal(engine, tmp_path / "journal.jsonl") as journal:
        assert journal.wait_connected(10)
        slow = journal.subscribe(maxsize=50)
        cid = sleeper(api, busybox, run, {RUN_LABEL: run})
        api.start(cid)

        def exec_true(_: int) -> None:
            api.exec_start(api.exec_create(cid, ["true"])["Id"])

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(exec_true, range(150)))
        obs.wait_for("exec_die", cid, n=150, timeout=30)
        wait_until(lambda: sum(r.actor_id == cid and r.base_action == "exec_die"
                               for r in written(journal)) >= 150, 15, "150 exec_die written")
    seen = {observed_key(e) for e in obs.select("exec_start", cid)}
    assert len(seen) == 150
    keys = {r.key for r in iter_records(journal.path) if r.kind == "event"}
    assert seen <= keys
    assert {observed_key(e) for e in obs.events()} <= keys
    got = list(slow)
    gaps = [r for r in got if r.kind == "gap"]
    assert len(got) == 51 and got[-1] is gaps[0]
    assert gaps[0].attributes["reason"] == "subscriber overflow"
    assert int(gaps[0].attributes["dropped"]) == slow.dropped_total >= 400


def test_burst_of_200_containers(clean: Any, busybox: str, tmp_path: Path) -> None:
    """Create, start, stop and remove 200 containers: every event the witness saw is in
    the journal, with no gap and no duplicate."""
    engine, run = clean.engine, unique("burst")
    api = engine.api

    def one(i: int) -> str:
        cid = sleeper(api, busybox, f"{run}-{i}", {RUN_LABEL: run})
        api.start(cid)
        api.stop(cid, timeout=0)
        api.remove_container(cid)
        return cid

    with EventObserver(url=engine.host, filters={"label": [f"{RUN_LABEL}={run}"]}) as obs, \
            EventJournal(engine, tmp_path / "journal.jsonl") as journal:
        assert journal.wait_connected(10)
        with ThreadPoolExecutor(8) as pool:
            ids = set(pool.map(one, range(200)))
        obs.wait_for("destroy", n=200, timeout=60)
        wait_until(lambda: sum(r.actor_id in ids and r.base_action == "destroy"
                               for r in written(journal)) == 200, 30, "200 destroys written")
    observed = {(e["Actor"]["ID"], e["Action"], e["timeNano"]) for e in obs.events()}
    records = list(iter_records(journal.path))
    journaled = {(r.actor_id, r.action, r.time_nano) for r in records if r.kind == "event"}
    assert len(observed) >= 200 * 5 and observed <= journaled
    assert journal.status()["gaps"] == 0
    assert all(journal.states()[cid]["state"] == "removed" for cid in ids)
    events = [r for r in records if r.kind == "event"]
    assert len({r.key for r in events}) == len(events)


def test_second_journal_on_one_file_follows_then_takes_over(clean: Any, busybox: str,
                                                             tmp_path: Path) -> None:
    """Two watchers on one host: the journal of a second process on the same file
    writes nothing while the first runs, yet sees every event; when the first stops it takes
    over. Each event is in the file, and reaches the follower's subscriber, exactly once."""
    engine, run = clean.engine, unique("two")
    api, path = engine.api, tmp_path / "journal.jsonl"
    script = textwrap.dedent(f"""
        import sys
        from opskit.engine.connection import open_engine
        from opskit.observe.journal import EventJournal
        journal = EventJournal(open_engine({engine.host!r}, timeout=10), {str(path)!r}).start()
        assert journal.wait_connected(10)
        print(journal.role, flush=True)
        sys.stdin.read()
        journal.stop()
        print("stopped", flush=True)
    """)
    first = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert first.stdin is not None and first.stdout is not None
    try:
        assert first.stdout.readline().strip() == "writer"
        with EventObserver(url=engine.host, filters={"label": [f"{RUN_LABEL}={run}"]}) as obs, \
                EventJournal(engine, path) as second:
            status = second.status()
            assert second.role == "follower" and status["writer_pid"] == first.pid
            assert second.wait_connected(5), "the writer's stream is open"
            sub = second.subscribe()
            cid = sleeper(api, busybox, run, {RUN_LABEL: run})
            api.start(cid)
            api.stop(cid, timeout=0)
            wait_until(lambda: second.states().get(cid, {}).get("state") == "exited", 10,
                       "the follower sees the stop")
            assert second.status()["records_written"] == 0, "a follower writes nothing"
            first.stdin.close()
            assert first.stdout.readline().strip() == "stopped" and first.wait(20) == 0
            wait_until(lambda: second.role == "writer" and second.status()["connected"], 15,
                       "take-over")
            api.start(cid)
            api.remove_container(cid, force=True)
            wait_until(lambda: second.states().get(cid, {}).get("state") == "removed", 10,
                       "the new writer journals the removal")
            obs.barrier()
            assert obs.error is None
            observed = [observed_key(e) for e in obs.select(container=cid)]
            starts = obs.count("start", cid)
    finally:
        if first.poll() is None:
            first.kill()
    records = list(iter_records(path))
    keys = [r.key for r in records if r.kind == "event" and r.actor_id == cid]
    assert len(keys) == len(set(keys)), "each event once in the file"
    assert set(observed) <= set(keys) and starts == 2
    assert sum(r.base_action == "start" for r in records if r.actor_id == cid) == starts
    seen = [r.key for r in sub if r.kind == "event" and r.actor_id == cid]
    assert seen == keys, "the subscriber got each event once, in file order"
    assert [r for r in records if r.kind == "gap"] == []
    assert [r.action for r in records if r.kind == "connect"] == [
        "connect", "stop", "connect", "stop"]

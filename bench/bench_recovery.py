"""Recovery: opskit's watchdog against Docker's restart policy and an autoheal-style poller.

    python bench/bench_recovery.py                      # the whole run (~20 min)
    python bench/bench_recovery.py --trials 5 --poll-trials 2 --seconds 15   # a quick look
    python bench/bench_recovery.py --cases pre,outage   # phases 5 and 6 only (~7 min)

Everything runs side by side in one run, on the demo web service (busybox httpd, healthcheck
every 1 s, 3 retries), with trials interleaved so every watcher sees the same engine:

1. detection latency
   a. from a crash (``ops.chaos("crash")``: the host kills the container's PID; the crash time
      is the engine's ``die`` event) to the watchdog's decision (the action journal's
      ``detected_at``) and to its restart request (the journal's ``started`` line, written just
      before ``docker restart``); opskit's own figure ``time_to_detect_s`` of
      :func:`opskit.analysis.metrics.recovery_times` (``detected_at`` minus the finding's
      ``since``: the ``die`` event's time when decided from the event) beside it. Target p95
      <= 50 ms.
   b. from the engine's ``health_status: unhealthy`` event to the restart request. Target p95
      <= 100 ms.
   The peer is an autoheal-style poller: every 5 s it lists ``health=unhealthy`` containers
   (what docker-autoheal asks the engine) and, for crashes, ``status=exited`` ones (autoheal
   itself never restarts an exited container), and restarts each (``docker restart -t 10``,
   autoheal's default). Its detection is the time from the same event to its restart call.
   Trials of the poller take up to 5 s each, so there are fewer (``--poll-trials``).
2. recovery time, from the ``die`` event to the engine's ``health_status: healthy`` event (our
   own event subscription): opskit restarting a ``restart="no"`` container, Docker's own
   ``restart="always"`` (no watchdog), the poller. Target for opskit p95 <= 2 s.
3. a crash loop (demo-crash, ``CRASH_AFTER=0.3``) under ``RecoveryPolicy(max_attempts=5,
   window="5m", backoff_initial=0.5, backoff_factor=2, jitter=0, verify_timeout=3)``: the
   attempts, the delays between them, the quarantine, and no restart in the 10 s after it;
   beside it, started at the same moment and counted over the same period, the same crasher
   under ``restart="always"`` and under the poller.
4. idle cost: the watchdog and its event journal in this process over ``--containers`` (50)
   running demo containers (healthchecks every 1 s: many exec events), process CPU time over
   ``--seconds`` (60) of wall, as % of one core; target <= 2 %. The poller runs meanwhile in a
   process of its own over the same containers and is measured the same way.
5. a failure before the watchdog: a ``restart="no"`` demo web container is crashed from the
   host and exited while nothing watches; then a new watchdog starts (at once, and ``3 s``
   later), or a new poller thread; the time from its start to the engine's ``healthy`` event
   (``--pre-trials``, 6). Docker's policy cannot act on it: a reference container crashed the
   same way and then given ``restart=always`` by ``docker update`` stays exited.
6. a dependency outage: on a user network of the run, ``db`` (demo web) and, per watcher, an
   app (demo web running a shell that refuses to start without ``db``, serves while it answers
   and exits 1 once it does not). ``db`` is stopped for ``--outage`` (40) seconds and started
   again; measured: db's ``start`` to the app healthy again, and the app's ``start`` events
   during the outage (every container of its name: a recreate makes a new one). The watchers
   share each outage: one watchdog with ``RecoveryPolicy(max_attempts=3, backoff_initial=0.5,
   quarantine_retry=10)``, the same with the default ``quarantine_retry`` (30), the first with
   the app's spec declaring ``depends_on=[db]`` (db watched with ``action="none"``), and
   Docker's ``restart="always"`` with no watchdog (``--outage-trials``, 3).

``--cases`` picks phases (``detect`` for 1 and 2, ``loop``, ``idle``, ``pre``, ``outage``).

Every container carries ``opskit-bench.run=<token>`` and is removed at the end, also on failure,
Ctrl-C or SIGTERM, with the lease containers opskit's recoveries made for them and the network
of phase 6. opskit's own files (keys, journals, evidence) go to a temporary ``OPSKIT_HOME``
(kept with ``--keep-state``). The markdown table is printed and written to
``bench/results/recovery.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import (
    BENCH_LABEL,
    DEMO_IMAGE,
    fmt_seconds,
    markdown_table,
    pid_cpu_seconds,
    process_cpu_seconds,
    write_results,
)

import opskit
from opskit.analysis.metrics import recovery_times
from opskit.base import labels as L
from opskit.observe.events import fetch_events
from opskit.spec.policy import RecoveryPolicy

RESULTS = Path(__file__).resolve().parent / "results" / "recovery.md"
SCOPE = "bench-recovery"
CRASH_IMAGE = "opskit/demo-crash:latest"
PEER_LABEL = "opskit-bench.peer"  # "poller": the only containers the poller may touch
POLL_EVERY = 5.0  # docker-autoheal's AUTOHEAL_INTERVAL default
POLL_STOP_TIMEOUT = 10  # docker-autoheal's AUTOHEAL_DEFAULT_STOP_TIMEOUT
LOOP_POLICY: dict[str, Any] = {"max_attempts": 5, "window": "5m", "backoff_initial": 0.5,
                               "backoff_factor": 2, "jitter": 0, "verify_timeout": 3}
QUIET_AFTER = 10.0  # seconds watched after the quarantine
TARGETS = {"crash": 0.050, "unhealthy": 0.100, "recover": 2.0, "cpu": 2.0}
# the demo image's own probe and interval, with a 5 s probe timeout instead of 1 s: 50 probes a
# second make this 2-core host slow enough that 1 s probes time out now and then, and the
# idle window must stay idle (no restarts by either watcher)
IDLE_PROBE = opskit.Healthcheck(
    test=["CMD-SHELL", 'wget -q -O- "http://127.0.0.1:${WEB_PORT:-8080}/health" || exit 1'],
    interval=1.0, timeout=5.0, retries=3)
PRE_LABEL = "opskit-bench.pre"  # phase 5: the one container a fresh poller may touch
PRE_LATE = 3.0  # phase 5: seconds between the exit and a late watchdog's start
# phase 6: the dependant app's probe (the demo's, 1 s interval and timeout, 2 retries)
APP_PROBE = opskit.Healthcheck(
    test=["CMD-SHELL", 'wget -q -O- "http://127.0.0.1:${WEB_PORT:-8080}/health" || exit 1'],
    interval=1.0, timeout=1.0, retries=2)
OUTAGE_POLICIES = {  # phase 6: one app per opskit watcher, all under one watchdog
    "qr10": RecoveryPolicy(max_attempts=3, backoff_initial=0.5, quarantine_retry=10),
    "default": RecoveryPolicy(max_attempts=3, backoff_initial=0.5),  # quarantine_retry: 30
    "dep": RecoveryPolicy(max_attempts=3, backoff_initial=0.5, quarantine_retry=10),
}
OUTAGE_WATCHERS = (*OUTAGE_POLICIES, "docker")
CASES = ("detect", "loop", "pre", "outage", "idle")


class BenchError(RuntimeError):
    """A trial did not see what it waited for."""


# -- what the engine said: our own event subscription ---------------------------------------

@dataclass(frozen=True)
class Seen:
    """One container event as the engine stamped it."""

    ns: int  # the engine's timeNano
    action: str  # "die", "health_status: healthy", ...
    cid: str
    code: str = ""  # a die's exitCode
    name: str = ""  # the container's name (a recreate keeps it, with a new ID)

    @property
    def t(self) -> float:
        """The event time as Unix seconds (same host, same clock as ``time.time()``)."""
        return self.ns / 1e9


class Observer(threading.Thread):
    """``docker events`` for this run's containers, on a client and thread of our own."""

    ACTIONS = ["create", "start", "restart", "die", "kill", "stop", "destroy", "health_status"]

    def __init__(self, url: str, label: str) -> None:
        super().__init__(name="bench-observer", daemon=True)
        self.api = docker.APIClient(base_url=url, timeout=30)
        # subscribed once this returns (the engine answered the request's headers)
        self.stream = self.api.events(decode=True, filters={
            "type": ["container"], "label": [label], "event": self.ACTIONS})
        self.seen: list[Seen] = []
        self.cond = threading.Condition()

    def run(self) -> None:
        with contextlib.suppress(Exception):  # close() cuts the socket under the reader
            for ev in self.stream:
                actor = ev.get("Actor") or {}
                attributes = actor.get("Attributes") or {}
                item = Seen(int(ev.get("timeNano") or 0), str(ev.get("Action", "")),
                            str(actor.get("ID", "")), str(attributes.get("exitCode", "")),
                            str(attributes.get("name", "")))
                with self.cond:
                    self.seen.append(item)
                    self.cond.notify_all()

    def close(self) -> None:
        """Cut the stream (the reader thread ends)."""
        with contextlib.suppress(Exception):
            self.stream.close()
        with contextlib.suppress(Exception):
            self.api.close()

    def find(self, cid: str, action: str, since_ns: int = 0, until_ns: int | None = None
             ) -> list[Seen]:
        """Events of one container with that action, strictly after ``since_ns``."""
        with self.cond:
            return [s for s in self.seen if s.cid == cid and s.action == action
                    and s.ns > since_ns and (until_ns is None or s.ns <= until_ns)]

    def wait(self, cid: str, action: str, since_ns: int = 0, timeout: float = 20.0) -> Seen:
        """The first such event after ``since_ns``, waiting for it up to ``timeout`` seconds."""
        return self._wait(lambda s: s.cid == cid and s.action == action and s.ns > since_ns,
                          f"no '{action}' event of {cid[:12]} within {timeout:g} s", timeout)

    def find_name(self, name: str, action: str, since_ns: int = 0,
                  until_ns: int | None = None) -> list[Seen]:
        """Events with that action of every container named ``name`` (a recreate's new
        container too), strictly after ``since_ns``."""
        with self.cond:
            return [s for s in self.seen if s.name == name and s.action == action
                    and s.ns > since_ns and (until_ns is None or s.ns <= until_ns)]

    def wait_name(self, name: str, action: str, since_ns: int = 0,
                  timeout: float = 20.0) -> Seen:
        """The first such event of a container named ``name`` after ``since_ns``."""
        return self._wait(lambda s: s.name == name and s.action == action and s.ns > since_ns,
                          f"no '{action}' event of {name} within {timeout:g} s", timeout)

    def _wait(self, match: Callable[[Seen], bool], what: str, timeout: float) -> Seen:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for s in self.seen:
                    if match(s):
                        return s
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(what)
                self.cond.wait(min(left, 0.5))


class JournalTap(threading.Thread):
    """A subscriber of opskit's event journal, like the watchdog's: when each record arrived."""

    def __init__(self, journal: Any) -> None:
        super().__init__(name="bench-journal-tap", daemon=True)
        self.sub = journal.subscribe()
        self.arrived: dict[tuple[str, str], float] = {}  # (container id, action) -> first time

    def run(self) -> None:
        for record in self.sub:
            if record.kind == "event" and record.type == "container":
                self.arrived.setdefault((record.actor_id, record.action), time.time())

    def close(self) -> None:
        self.sub.close()

    def when(self, cid: str, action: str, timeout: float = 5.0) -> float:
        deadline = time.monotonic() + timeout
        while (cid, action) not in self.arrived:
            if time.monotonic() > deadline:
                raise BenchError(f"the journal did not deliver '{action}' of {cid[:12]}")
            time.sleep(0.005)
        return self.arrived[(cid, action)]


# -- the peer: an autoheal-style poller -------------------------------------------------------

class Poller(threading.Thread):
    """Every ``every`` seconds: list unhealthy and exited containers, restart each one found.

    What docker-autoheal does (``GET /containers/json?filters={"health":["unhealthy"]}``, then
    ``POST /containers/ID/restart?t=10``, then ``sleep $AUTOHEAL_INTERVAL``), plus exited
    containers for crashes. Only containers with ``labels`` are listed.
    """

    def __init__(self, url: str, labels: list[str], every: float = POLL_EVERY) -> None:
        super().__init__(name="bench-poller", daemon=True)
        self.api = docker.APIClient(base_url=url, timeout=60)
        self.labels, self.every = labels, every
        self.calls: list[tuple[float, str, str]] = []  # (time.time() of the restart call, id, why)
        self.polls = 0
        self.errors = 0
        self.stopping = threading.Event()

    def poll_once(self) -> None:
        found = [(c["Id"], "unhealthy") for c in self.api.containers(
            filters={"health": "unhealthy", "label": self.labels})]
        found += [(c["Id"], "exited") for c in self.api.containers(
            all=True, filters={"status": "exited", "label": self.labels})]
        for cid, why in found:
            self.calls.append((time.time(), cid, why))
            try:
                self.api.restart(cid, timeout=POLL_STOP_TIMEOUT)
            except docker.errors.APIError:
                self.errors += 1  # removed meanwhile
        self.polls += 1

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once()
            except Exception:
                self.errors += 1
            self.stopping.wait(self.every)

    def first_call(self, cid: str, timeout: float) -> float:
        """When the poller first called restart on ``cid`` (waiting up to ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            for when, which, _ in list(self.calls):
                if which == cid:
                    return when
            if time.monotonic() > deadline:
                raise BenchError(f"the poller did not restart {cid[:12]} within {timeout:g} s")
            time.sleep(0.01)

    def count(self, cid: str) -> int:
        return sum(1 for _, which, _ in list(self.calls) if which == cid)


def poller_process(url: str, labels: list[str], every: float, ready: Any) -> None:
    """The poller as a process of its own (for its CPU cost): runs until terminated, or until
    its parent is gone (a bench killed with SIGKILL leaves no poller behind)."""
    parent = os.getppid()
    poller = Poller(url, labels, every)
    ready.set()
    while os.getppid() == parent:
        try:
            poller.poll_once()
        except Exception:
            poller.errors += 1
        time.sleep(every)


# -- helpers ----------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank: the ceil(q * n / 100)-th smallest value
    (p95 of 20 values is the 19th; of 6, the 6th)."""
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(q * len(ordered) / 100)))
    return ordered[rank - 1]


def action_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of the action journal (``started`` and ``done`` lines alike)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


def wait_line(path: Path, match: Callable[[dict[str, Any]], bool], timeout: float,
              what: str) -> dict[str, Any]:
    """The first action-journal line that ``match``es, waiting up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        for line in action_lines(path):
            if match(line):
                return line
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: no such action-journal line within {timeout:g} s")
        time.sleep(0.02)


def thread_cpu_seconds() -> dict[str, float]:
    """CPU seconds of this process's live threads, summed by name up to the last ``-``/``_``."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for thread in threading.enumerate():
        try:
            with open(f"/proc/self/task/{thread.native_id}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        group = thread.name.rsplit("_", 1)[0] if thread.name.startswith("opskit-recover") \
            else thread.name
        out[group] = out.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def code_revision() -> str:
    """The commit of the opskit this process imported, and whether opskit/ had local changes."""
    root = Path(opskit.__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=10).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" with local changes in opskit/" if git("status", "--porcelain", "opskit")
                   else "")


def loadavg() -> str:
    """The 1-minute load average."""
    with open("/proc/loadavg") as fh:
        return fh.read().split()[0]


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The event journal's lines (engine events of every container)."""
    return action_lines(path)


def pair(values: list[float]) -> str:
    """``p50 / p95`` of a list of seconds."""
    return f"{fmt_seconds(pct(values, 50))} / {fmt_seconds(pct(values, 95))}"


def times(peer: list[float], ours: list[float]) -> str:
    """Peer / opskit at p50 and p95."""
    def one(q: float) -> str:
        a, b = pct(peer, q), pct(ours, q)
        return f"{a / b:,.0f}x" if b > 0 and a / b >= 10 else (
            f"{a / b:,.1f}x" if b > 0 else "n/a")
    return f"{one(50)} / {one(95)}"


@dataclass
class Bench:
    """What every phase shares."""

    ops: opskit.Ops
    api: Any
    token: str
    obs: Observer
    poller: Poller
    journal: Any
    tap: JournalTap
    actions_path: Path
    prefix: str
    known: set[str] = field(default_factory=set)
    series: dict[str, list[float]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    loads: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)  # made by this run, removed at the end

    def add(self, key: str, value: float) -> None:
        self.series.setdefault(key, []).append(value)

    def get(self, key: str) -> list[float]:
        return self.series.get(key, [])

    def labels(self, peer: bool) -> dict[str, str]:
        out = {BENCH_LABEL: self.token}
        if peer:
            out[PEER_LABEL] = "poller"
        return out

    def deploy(self, name: str, *, restart: str = "no", peer: bool = False,
               image: str = DEMO_IMAGE, env: dict[str, str] | None = None,
               wait: str | None = "healthy", replicas: int = 1,
               healthcheck: opskit.Healthcheck | None = None,
               labels: dict[str, str] | None = None, command: list[str] | None = None,
               networks: list[str] | None = None, depends_on: list[str] | None = None
               ) -> list[str]:
        spec = opskit.ServiceSpec(name=name, image=image,
                                  labels={**self.labels(peer), **(labels or {})},
                                  restart=restart, env=env or {}, replicas=replicas,
                                  healthcheck=healthcheck, command=command,
                                  networks=networks or (), depends_on=depends_on or ())
        ids = list(self.ops.deploy(spec, wait=wait, timeout=60).ids)
        self.known.update(ids)
        return ids

    def remove(self, cid: str) -> None:
        with contextlib.suppress(Exception):
            self.api.remove_container(cid, force=True, v=True)

    def healthy_web(self, name: str, *, restart: str = "no", peer: bool = False,
                    labels: dict[str, str] | None = None) -> str:
        """Deploy one demo web container, healthy and seen healthy by every watcher."""
        cid = self.deploy(name, restart=restart, peer=peer, labels=labels)[0]
        self.obs.wait(cid, "health_status: healthy")
        time.sleep(0.2)  # the watchdog handles the same event on its own thread
        return cid


def watchdog_line(b: Bench, wd: Any, cid: str, phase: str) -> Callable[[dict[str, Any]], bool]:
    def match(d: dict[str, Any]) -> bool:
        return (d.get("actor") == wd.actor and d.get("container_id") == cid
                and d.get("action") == "restart" and d.get("phase") == phase)
    return match


def engine_time(text: str) -> float:
    """Unix seconds of an engine timestamp (``2026-11-26T12:00:00.123456789Z``)."""
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(head).replace(tzinfo=UTC).timestamp() + float(f"0.{frac or 0}")


def steps(b: Bench, kind: str, cid: str, started: dict[str, Any], done: dict[str, Any]) -> None:
    """Where opskit's time went between the decision and the ``started`` line: the incident
    lease (its container's ``Created``) and the evidence (its ``captured_at``), which run side
    by side from the decision, then from the evidence to the line."""
    decided = float(started["detected_at"])
    with contextlib.suppress(Exception):
        lease = b.api.containers(all=True, filters={"label": [
            f"{L.PREFIX}lease-for={cid}"]})[0]
        created = engine_time(b.api.inspect_container(lease["Id"])["Created"])
        b.add(f"{kind}.step.lease", created - decided)
        path = (done.get("details") or {}).get("evidence")
        if path:
            captured = float(json.loads(Path(path).read_text())["captured_at"])
            b.add(f"{kind}.step.evidence", captured - decided)
            b.add(f"{kind}.step.line", float(started["ts"]) - captured)


# -- 1 and 2: detection and recovery trials ---------------------------------------------------

def opskit_crash(b: Bench, wd: Any, i: int) -> None:
    name = f"{b.prefix}-oc{i:02d}"
    cid = b.healthy_web(name)
    fault = b.ops.chaos("crash", name)
    die = b.obs.wait(cid, "die")
    started = wait_line(b.actions_path, watchdog_line(b, wd, cid, "started"), 20,
                        f"{name}: restart started")
    done = wait_line(b.actions_path, watchdog_line(b, wd, cid, "done"), 30,
                     f"{name}: restart done")
    healthy = b.obs.wait(cid, "health_status: healthy", since_ns=die.ns)
    start = b.obs.wait(cid, "start", since_ns=die.ns)
    b.add("crash.decision.opskit", started["detected_at"] - die.t)
    b.add("crash.request.opskit", started["ts"] - die.t)
    b.add("crash.recover.opskit", healthy.t - die.t)
    b.add("crash.delivered.opskit", b.tap.when(cid, "die") - die.t)
    b.add("crash.start.opskit", start.t - started["ts"])
    b.add("crash.healthy.opskit", healthy.t - start.t)
    steps(b, "crash", cid, started, done)
    with contextlib.suppress(Exception):  # the evidence's inspect has the engine's FinishedAt
        state = json.loads(Path(done["details"]["evidence"]).read_text())["inspect"]["State"]
        b.add("crash.finished_to_die", die.t - engine_time(state["FinishedAt"]))
    if done.get("result") != "ok":
        b.problems.append(f"{name}: opskit's recovery ended '{done.get('result')}': "
                          f"{done.get('error')}")
    with contextlib.suppress(Exception):
        fault.undo()
    b.remove(cid)


def opskit_exit(b: Bench, wd: Any, i: int) -> None:
    """A crash with another exit code than 137: httpd killed from inside (SIGTERM), so the
    demo's PID 1 exits 143, with no API kill. The watchdog decides such a `die` from the event
    alone; a 137 (ops.chaos crash) needs an inspect to tell an OOM kill apart."""
    name = f"{b.prefix}-ox{i:02d}"
    cid = b.healthy_web(name)
    b.ops.exec(name, ["killall", "httpd"])
    die = b.obs.wait(cid, "die")
    started = wait_line(b.actions_path, watchdog_line(b, wd, cid, "started"), 20,
                        f"{name}: restart started")
    done = wait_line(b.actions_path, watchdog_line(b, wd, cid, "done"), 30,
                     f"{name}: restart done")
    b.add("exit.decision.opskit", started["detected_at"] - die.t)
    b.add("exit.request.opskit", started["ts"] - die.t)
    steps(b, "exit", cid, started, done)
    if die.code == "137" or done.get("result") != "ok":
        b.problems.append(f"{name}: exit {die.code}, recovery '{done.get('result')}'")
    b.remove(cid)


def docker_crash(b: Bench, i: int) -> None:
    name = f"{b.prefix}-dc{i:02d}"
    cid = b.healthy_web(name, restart="always")
    fault = b.ops.chaos("crash", name)
    die = b.obs.wait(cid, "die")
    # what any watcher that inspects on `die` waits for (no watchdog looks at this container)
    asked = time.time()
    b.api.inspect_container(cid)
    b.add("crash.inspect_after_die", time.time() - die.t)
    b.add("crash.inspect_call", time.time() - asked)
    start = b.obs.wait(cid, "start", since_ns=die.ns)
    healthy = b.obs.wait(cid, "health_status: healthy", since_ns=die.ns)
    b.add("crash.request.docker", start.t - die.t)
    b.add("crash.recover.docker", healthy.t - die.t)
    b.add("crash.healthy.docker", healthy.t - start.t)
    with contextlib.suppress(Exception):
        fault.undo()
    b.remove(cid)


def poller_crash(b: Bench, i: int) -> None:
    name = f"{b.prefix}-pc{i:02d}"
    cid = b.healthy_web(name, peer=True)
    time.sleep(random.uniform(0.0, POLL_EVERY))  # the crash falls anywhere in the poll period
    fault = b.ops.chaos("crash", name)
    die = b.obs.wait(cid, "die")
    call = b.poller.first_call(cid, 3 * POLL_EVERY)
    healthy = b.obs.wait(cid, "health_status: healthy", since_ns=die.ns, timeout=30)
    start = b.obs.wait(cid, "start", since_ns=die.ns)
    b.add("crash.request.poller", call - die.t)
    b.add("crash.recover.poller", healthy.t - die.t)
    b.add("crash.start.poller", start.t - call)
    b.add("crash.healthy.poller", healthy.t - start.t)
    with contextlib.suppress(Exception):
        fault.undo()
    b.remove(cid)


def opskit_unhealthy(b: Bench, wd: Any, i: int) -> None:
    name = f"{b.prefix}-ou{i:02d}"
    cid = b.healthy_web(name)
    fault = b.ops.chaos("unhealthy", name)
    bad = b.obs.wait(cid, "health_status: unhealthy", timeout=20)
    started = wait_line(b.actions_path, watchdog_line(b, wd, cid, "started"), 20,
                        f"{name}: restart started")
    b.obs.wait(cid, "restart", since_ns=bad.ns)
    fault.undo()  # make-healthy: the removed health file survives a restart
    done = wait_line(b.actions_path, watchdog_line(b, wd, cid, "done"), 30,
                     f"{name}: restart done")
    b.add("unhealthy.decision.opskit", started["detected_at"] - bad.t)
    b.add("unhealthy.request.opskit", started["ts"] - bad.t)
    b.add("unhealthy.delivered.opskit", b.tap.when(cid, "health_status: unhealthy") - bad.t)
    steps(b, "unhealthy", cid, started, done)
    if done.get("result") != "ok":
        b.problems.append(f"{name}: opskit's recovery ended '{done.get('result')}': "
                          f"{done.get('error')}")
    b.remove(cid)


def poller_unhealthy(b: Bench, i: int) -> None:
    name = f"{b.prefix}-pu{i:02d}"
    cid = b.healthy_web(name, peer=True)
    time.sleep(random.uniform(0.0, POLL_EVERY))
    fault = b.ops.chaos("unhealthy", name)
    bad = b.obs.wait(cid, "health_status: unhealthy", timeout=20)
    call = b.poller.first_call(cid, 3 * POLL_EVERY)
    b.obs.wait(cid, "restart", since_ns=bad.ns)
    fault.undo()
    b.obs.wait(cid, "health_status: healthy", since_ns=bad.ns)
    b.add("unhealthy.request.poller", call - bad.t)
    b.remove(cid)


def run_trials(b: Bench, trials: int, poll_trials: int) -> dict[str, Any]:
    """Phases 1 and 2, interleaved; returns facts for the notes."""
    names = [f"{b.prefix}-{kind}{i:02d}" for i in range(trials) for kind in ("oc", "ox", "ou")]
    wd = b.ops.watch(names, policy=RecoveryPolicy(verify_timeout=10)).start()
    try:
        for i in range(max(trials, poll_trials)):
            started = time.monotonic()
            if i < trials:
                opskit_crash(b, wd, i)
                opskit_exit(b, wd, i)
                docker_crash(b, i)
            if i < poll_trials:
                poller_crash(b, i)
            if i < trials:
                opskit_unhealthy(b, wd, i)
            if i < poll_trials:
                poller_unhealthy(b, i)
            last = b.get("crash.decision.opskit")[-1:] if i < trials else []
            print(f"round {i + 1}/{max(trials, poll_trials)} in "
                  f"{time.monotonic() - started:.1f}s"
                  + "".join(f"; crash to decision {x * 1e3:.1f} ms" for x in last), flush=True)
        metric = recovery_times(wd.actions())
        crash_rows = metric[metric["container"].str.contains(f"{b.prefix}-oc")]
        b.series["crash.metric.opskit"] = [float(x) for x in crash_rows["time_to_detect_s"]
                                           .dropna()]
        b.series["crash.ttr.opskit"] = [float(x) for x in crash_rows["time_to_recover_s"]
                                        .dropna()]
        return {"status": wd.status()}
    finally:
        wd.stop()


# -- 3: a crash loop ----------------------------------------------------------------------------

@dataclass
class LoopResult:
    period: float
    attempts: list[dict[str, Any]]
    started_gaps: list[float]
    backoffs: list[float]
    quarantined_after: float | None
    quiet_restarts: int
    docker_starts: int
    docker_gaps: list[float]
    poller_starts: int
    notes: list[dict[str, Any]]
    relist_offsets: list[float]


def crash_loop(b: Bench) -> LoopResult:
    names = {who: f"{b.prefix}-loop-{who}" for who in ("opskit", "docker", "poller")}
    wd = b.ops.watch([names["opskit"]], policy=RecoveryPolicy(**LOOP_POLICY)).start()
    wd_start = time.time()  # its re-list ticks come every relist_every seconds from here
    env = {"CRASH_AFTER": "0.3"}
    ids: list[str] = []
    try:
        t0 = time.time()
        ours = b.deploy(names["opskit"], image=CRASH_IMAGE, env=env, wait=None)[0]
        ids.append(ours)
        theirs = b.deploy(names["docker"], image=CRASH_IMAGE, env=env, restart="always",
                          wait=None)[0]
        ids.append(theirs)
        polled = b.deploy(names["poller"], image=CRASH_IMAGE, env=env, peer=True, wait=None)[0]
        ids.append(polled)
        # by name: the ladder's recreate replaces the container (a new ID, the same name)
        note = wait_line(b.actions_path, lambda d: d.get("actor") == wd.actor and d.get(
            "container") == names["opskit"] and d.get("action") == "quarantine", 90,
                         "crash loop: quarantine")
        t_q = float(note["ts"])
        time.sleep(QUIET_AFTER)
        t_end = time.time()
        lines = [d for d in action_lines(b.actions_path) if d.get("actor") == wd.actor
                 and d.get("container") == names["opskit"]]
        starts = {d["id"]: d for d in lines if d.get("phase") == "started"}
        dones = [d for d in lines if d.get("phase") == "done" and d["id"] in starts]
        attempts = [{"attempt": (d.get("details") or {}).get("attempt"), "reason": d["reason"],
                     "step": d.get("action"),
                     "result": d["result"], "started": starts[d["id"]]["ts"] - t0,
                     "done": d["ts"] - t0, "error": d.get("error", "")} for d in dones]
        attempts.sort(key=lambda a: a["started"])
        gaps = [b2["started"] - a["started"] for a, b2 in itertools.pairwise(attempts)]
        backoffs = [b2["started"] - a["done"] for a, b2 in itertools.pairwise(attempts)]
        others = [{"result": d["result"], "reason": d["reason"], "ts": d["ts"] - t0,
                   "why": (d.get("details") or {}).get("why", "")}
                  for d in lines if d["id"] not in starts]
        t0_ns, t_end_ns, t_q_ns = int(t0 * 1e9), int(t_end * 1e9), int(t_q * 1e9)
        # one `start` event per restart or recreate (a restart also emits `restart`)
        quiet = len(b.obs.find_name(names["opskit"], "start", t_q_ns, t_end_ns))
        b.known.update(s.cid for s in b.obs.find_name(names["opskit"], "create"))
        docker_starts = [s.t for s in b.obs.find(theirs, "start", t0_ns, t_end_ns)]
        return LoopResult(
            period=t_end - t0, attempts=attempts, started_gaps=gaps, backoffs=backoffs,
            quarantined_after=t_q - t0, quiet_restarts=quiet,
            docker_starts=len(docker_starts),
            docker_gaps=[y - x for x, y in itertools.pairwise(docker_starts)],
            poller_starts=len(b.obs.find(polled, "start", t0_ns, t_end_ns)), notes=others,
            relist_offsets=[(t0 + a["started"] - wd_start) % wd.relist_every
                            for a in attempts])
    finally:
        wd.stop()
        for cid in ids:
            b.remove(cid)
        for item in b.api.containers(all=True, filters={"name": [f"^/{names['opskit']}"],
                                                        "label": [f"{BENCH_LABEL}={b.token}"]}):
            b.remove(item["Id"])  # the ladder's recreations


# -- 4: idle cost -------------------------------------------------------------------------------

@dataclass
class IdleResult:
    kind: str  # "own": the watchdog's own journal (life-cycle events); "full": ops.journal()
    containers: int
    wall: float
    ours_pct: float
    peer_pct: float
    events: int
    polls: str
    by_thread: dict[str, float]
    restarts: int
    load: str


def idle_window(b: Bench, kind: str, name: str, ids: list[str], child_pid: int,
                seconds: float) -> IdleResult:
    """One CPU window: this process runs only the watchdog and its journal meanwhile."""
    journal: Any = None
    if kind == "full":
        journal = b.ops.journal()  # every engine event, as ops.watch() shares it when it runs
        journal.start()
        if not journal.wait_connected(10):
            raise BenchError("the event journal did not connect")
    wd = b.ops.watch([name]).start()  # without a running ops.journal(): a journal of its own
    t_wd = time.time()
    try:
        time.sleep(5.0)  # start-ups (the watchdog's first re-list, the journal's reconcile)
        ev0 = wd.status()["journal"].get("events_written", 0)
        load0 = loadavg()
        t_from = time.time()
        thr0 = thread_cpu_seconds()
        cpu0, peer0, wall0 = process_cpu_seconds(), pid_cpu_seconds(child_pid), time.monotonic()
        time.sleep(seconds)
        cpu1, peer1, wall1 = process_cpu_seconds(), pid_cpu_seconds(child_pid), time.monotonic()
        thr1 = thread_cpu_seconds()
        status = wd.status()
        ev1 = status["journal"].get("events_written", 0)
        path = Path(status["journal"]["path"])
        restarts = sum(1 for line in read_journal(path)
                       if line.get("action") == "restart" and line.get("actor_id") in ids
                       and t_from <= line.get("time_nano", 0) / 1e9)
        load = f"{load0} at the start, {loadavg()} at the end"
    finally:
        wd.stop()
        if journal is not None:
            journal.stop()
    wall = wall1 - wall0
    by_thread = {k: (thr1[k] - thr0.get(k, 0.0)) / wall * 100 for k in thr1}
    if status.get("actions") or status.get("errors"):
        acted = [f"{d['action']} {d['phase']} {d.get('result') or ''} of {d['container']} for "
                 f"{d['reason']} at +{float(d['ts']) - t_wd:.1f} s {d.get('error') or ''}".strip()
                 for d in action_lines(b.actions_path) if d.get("actor") == wd.actor]
        b.problems.append(f"idle watchdog ({kind} journal): {status.get('actions')} actions, "
                          f"{status.get('errors')} errors (expected none): " + "; ".join(acted))
    return IdleResult(kind, len(ids), wall, (cpu1 - cpu0) / wall * 100,
                      (peer1 - peer0) / wall * 100, ev1 - ev0,
                      f"{status.get('passes')} re-lists", by_thread, restarts, load)


def idle_cost(b: Bench, count: int, seconds: float) -> list[IdleResult]:
    """Both windows over one fleet, with the poller process running through both."""
    name = f"{b.prefix}-fleet"
    labels = [f"{BENCH_LABEL}={b.token}", f"{PEER_LABEL}=poller"]
    ids = b.deploy(name, peer=True, wait="running", replicas=count, healthcheck=IDLE_PROBE)
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    child = ctx.Process(target=poller_process, args=(b.ops.host, labels, POLL_EVERY, ready),
                        name="bench-poller-process", daemon=True)
    try:
        deadline = time.monotonic() + 120
        while len(b.api.containers(filters={"label": labels, "health": "healthy"})) < len(ids):
            if time.monotonic() > deadline:
                raise BenchError("the fleet did not become healthy within 120 s")
            time.sleep(0.5)
        print(f"fleet of {len(ids)} healthy", flush=True)
        child.start()
        if not ready.wait(60) or child.pid is None:
            raise BenchError("the poller process did not start")
        results = []
        for kind in ("own", "full"):
            results.append(idle_window(b, kind, name, ids, child.pid, seconds))
            print(f"idle ({kind} journal): opskit {results[-1].ours_pct:.2f} %, poller "
                  f"{results[-1].peer_pct:.3f} %", flush=True)
        return results
    finally:
        if child.pid is not None:
            child.terminate()
            child.join(10)
        for cid in ids:
            b.remove(cid)


# -- 5: a failure before the watchdog ---------------------------------------------------------

def wait_exited(b: Bench, cid: str, timeout: float = 20.0) -> None:
    """Until the engine says the container is exited (its exit handling is done)."""
    deadline = time.monotonic() + timeout
    while b.api.inspect_container(cid)["State"]["Status"] != "exited":
        if time.monotonic() > deadline:
            raise BenchError(f"{cid[:12]} not exited within {timeout:g} s")
        time.sleep(0.05)


def crashed_before(b: Bench, name: str, labels: dict[str, str] | None = None
                   ) -> tuple[str, Seen]:
    """A healthy demo web container (``restart=no``), crashed from the host and exited, with
    no watcher looking: its ID and its ``die`` event."""
    cid = b.healthy_web(name, labels=labels)
    b.ops.chaos("crash", name)
    die = b.obs.wait(cid, "die")
    wait_exited(b, cid)
    return cid, die


def recovery_line(wd: Any, cid: str, phase: str) -> Callable[[dict[str, Any]], bool]:
    def match(d: dict[str, Any]) -> bool:
        return (d.get("actor") == wd.actor and d.get("container_id") == cid
                and d.get("action") in ("restart", "recreate") and d.get("phase") == phase)
    return match


def pre_opskit(b: Bench, i: int, late: float = 0.0) -> None:
    """The watchdog starts after the crash (``late`` seconds after the engine said exited):
    its first pass (inside ``start()``) finds the container exited, asks whether it was
    stopped on purpose, and restarts it."""
    who = "opskit_late" if late else "opskit"
    name = f"{b.prefix}-pre-{'l' if late else 'o'}{i:02d}"
    cid, die = crashed_before(b, name)
    time.sleep(late)
    wd = b.ops.watch([name], policy=RecoveryPolicy(verify_timeout=10))
    try:
        t0 = time.time()
        wd.start()
        b.add(f"pre.first_pass.{who}", time.time() - t0)
        healthy = b.obs.wait(cid, "health_status: healthy", since_ns=die.ns, timeout=30)
        started = wait_line(b.actions_path, recovery_line(wd, cid, "started"), 5,
                            f"{name}: recovery started")
        done = wait_line(b.actions_path, recovery_line(wd, cid, "done"), 15,
                         f"{name}: recovery done")
        start = b.obs.wait(cid, "start", since_ns=die.ns)
        b.add(f"pre.down.{who}", t0 - die.t)
        b.add(f"pre.recover.{who}", healthy.t - t0)
        b.add(f"pre.request.{who}", float(started["ts"]) - t0)
        b.add(f"pre.start.{who}", start.t - float(started["ts"]))
        b.add(f"pre.healthy.{who}", healthy.t - start.t)
        if done.get("result") != "ok" or done.get("action") != "restart":
            b.problems.append(f"{name}: opskit's {done.get('action')} ended "
                              f"'{done.get('result')}': {done.get('error')}")
    finally:
        wd.stop()
        b.remove(cid)


def pre_poller(b: Bench, i: int) -> None:
    """A poller of its own, started after the crash, that sees only this container."""
    name = f"{b.prefix}-pre-p{i:02d}"
    mark = f"{b.token}-{i}"
    cid, die = crashed_before(b, name, labels={PRE_LABEL: mark})
    poller = Poller(b.ops.host, [f"{BENCH_LABEL}={b.token}", f"{PRE_LABEL}={mark}"])
    try:
        t0 = time.time()
        poller.start()
        call = poller.first_call(cid, 3 * POLL_EVERY)
        healthy = b.obs.wait(cid, "health_status: healthy", since_ns=die.ns, timeout=30)
        b.add("pre.recover.poller", healthy.t - t0)
        b.add("pre.request.poller", call - t0)
    finally:
        poller.stopping.set()
        poller.join(POLL_EVERY + 15)
        b.remove(cid)


@dataclass
class PreResult:
    trials: int
    docker_seconds: float  # how long the Docker-policy reference was watched
    docker_starts: int  # its start events meanwhile
    docker_state: str  # its state at the end
    until_ahead: float  # seconds an engine events replay with --until 2 s ahead took
    until_past: float  # the same with --until just past


def before_watchdog(b: Bench, trials: int) -> PreResult:
    """Phase 5: opskit and a fresh poller, interleaved; Docker's policy as a reference (the
    same crash, then ``docker update --restart=always``: the engine starts nothing)."""
    ref, die = crashed_before(b, f"{b.prefix}-pre-docker")
    b.api.update_container(ref, restart_policy={"Name": "always", "MaximumRetryCount": 0})
    try:
        for i in range(trials):
            began = time.monotonic()
            pre_opskit(b, i)
            pre_opskit(b, i, late=PRE_LATE)
            pre_poller(b, i)
            print(f"before the watchdog {i + 1}/{trials} in {time.monotonic() - began:.1f}s; "
                  f"opskit {b.get('pre.recover.opskit')[-1]:.2f} s, {PRE_LATE:g} s later "
                  f"{b.get('pre.recover.opskit_late')[-1]:.2f} s, poller "
                  f"{b.get('pre.recover.poller')[-1]:.2f} s", flush=True)
        state = str(b.api.inspect_container(ref)["State"]["Status"])
        starts = len(b.obs.find(ref, "start", die.ns))
        watched = time.time() - die.t
        # what the stop-intent check's replay costs when its --until is still ahead
        took = []
        for ahead in (2.0, -0.1):
            now = time.time_ns()
            asked = time.monotonic()
            fetch_events(b.api, now - 5_000_000_000, now + int(ahead * 1e9),
                         filters={"container": [ref], "type": ["container"]})
            took.append(time.monotonic() - asked)
        return PreResult(trials, watched, starts, state, took[0], took[1])
    finally:
        b.remove(ref)


# -- 6: a dependency outage -------------------------------------------------------------------

def app_command(db: str) -> list[str]:
    """The dependant app: refuses to start without ``db``, serves while it answers, exits 1
    once it does not. (``timeout 1 wget``, not ``wget -T 1``: the demo image's static busybox
    1.35 wget crashes with SIGSEGV when given ``-T``.)"""
    probe = f"timeout 1 wget -q -O /dev/null http://{db}:8080/health"
    return ["sh", "-c", f"until {probe}; do exit 1; done; httpd -p 8080 -h /www; "
            f"while {probe}; do sleep 0.5; done; echo lost db; exit 1"]


@dataclass
class OutageTrial:
    outage: float  # db's die to its start again (engine events)
    recovered: dict[str, float]  # watcher -> db's start to the app's healthy (inf: not seen)
    starts: dict[str, int]  # watcher -> the app's start events during the outage
    after: dict[str, int]  # watcher -> its start events from db's return to healthy
    attempts: dict[str, list[str]]  # opskit watcher -> its actions, from db's die
    quarantined: dict[str, float | None]  # opskit watcher -> when, from db's die
    waited: dict[str, int]  # opskit watcher -> "waiting for dependency" notes
    gaps: dict[str, list[float]]  # watcher -> seconds between the app's starts in the outage
    load: str
    wait: float  # how long after db's return an app may take (inf beyond)


def outage_trial(b: Bench, i: int, net: str, outage: float, wait: float) -> OutageTrial:
    """One outage of one ``db``, every watcher's app depending on it at the same time."""
    db = f"{b.prefix}-o{i}-db"
    names = {who: f"{b.prefix}-o{i}-{who}" for who in OUTAGE_WATCHERS}
    cmd = app_command(db)
    wd = None
    try:
        db_id = b.deploy(db, networks=[net])[0]
        for who, name in names.items():
            b.deploy(name, command=cmd, networks=[net], healthcheck=APP_PROBE,
                     restart="always" if who == "docker" else "no",
                     depends_on=[db] if who == "dep" else None)
        policies = {names[who]: policy for who, policy in OUTAGE_POLICIES.items()}
        wd = b.ops.watch([*policies, db], policy={
            **policies, db: RecoveryPolicy(action="none")}).start()  # db: watched, not acted on
        time.sleep(1.5)  # every app seen healthy by every watcher
        load = loadavg()
        b.ops.stop(db, timeout=1)
        down = b.obs.wait(db_id, "die", timeout=20)
        time.sleep(max(0.0, down.t + outage - time.time()))
        b.ops.start(db)
        back = b.obs.wait(db_id, "start", since_ns=down.ns, timeout=20)
        recovered, after = {}, {}
        deadline = time.monotonic() + wait
        for who, name in names.items():
            try:
                healthy = b.obs.wait_name(name, "health_status: healthy", since_ns=back.ns,
                                          timeout=max(0.0, deadline - time.monotonic()))
                recovered[who] = healthy.t - back.t
                after[who] = len(b.obs.find_name(name, "start", back.ns, healthy.ns))
            except BenchError:
                recovered[who] = math.inf
                after[who] = len(b.obs.find_name(name, "start", back.ns))
                b.problems.append(f"outage {i + 1}: {who}'s app not healthy within {wait:g} s "
                                  "of db's return")
        starts, gaps = {}, {}
        for who, name in names.items():
            seen = [s.t for s in b.obs.find_name(name, "start", down.ns, back.ns)]
            starts[who], gaps[who] = len(seen), [y - x for x, y in itertools.pairwise(seen)]
            if not b.obs.find_name(name, "die", down.ns, back.ns):
                b.problems.append(f"outage {i + 1}: {who}'s app did not exit while db was down")
            b.known.update(s.cid for s in b.obs.find_name(name, "create"))
        attempts: dict[str, list[str]] = {}
        quarantined: dict[str, float | None] = {}
        waited: dict[str, int] = {}
        lines = [d for d in action_lines(b.actions_path) if d.get("actor") == wd.actor]
        for who in OUTAGE_POLICIES:
            mine = [d for d in lines if d.get("container") == names[who]]
            begun = {d["id"]: d for d in mine if d.get("phase") == "started"}
            attempts[who] = [f"{d['action']} +{float(begun[d['id']]['ts']) - down.t:.1f} s "
                             f"{d.get('result')}" for d in mine
                             if d.get("phase") == "done" and d["id"] in begun]
            q = [float(d["ts"]) for d in mine if d.get("action") == "quarantine"]
            quarantined[who] = q[0] - down.t if q else None
            waited[who] = sum(1 for d in mine if (d.get("details") or {}).get(
                "why", "").startswith("its dependency"))
        return OutageTrial(back.t - down.t, recovered, starts, after, attempts, quarantined,
                           waited, gaps, load, wait)
    finally:
        if wd is not None:
            wd.stop()
        for name in [*names.values(), db]:
            for item in b.api.containers(all=True, filters={"name": [f"^/{name}"], "label": [
                    f"{BENCH_LABEL}={b.token}"]}):
                b.remove(item["Id"])


def dependency_outage(b: Bench, trials: int, outage: float, wait: float) -> list[OutageTrial]:
    """Phase 6: ``trials`` outages, one after the other, on a user network of this run."""
    net = f"{b.prefix}-net"
    b.ops.network_create(net)
    b.networks.append(net)
    out = []
    for i in range(trials):
        began = time.monotonic()
        out.append(outage_trial(b, i, net, outage, wait))
        t = out[-1]
        print(f"outage {i + 1}/{trials} in {time.monotonic() - began:.1f}s: back to healthy "
              + ", ".join(f"{who} {t.recovered[who]:.1f} s" for who in OUTAGE_WATCHERS)
              + "; starts during the outage "
              + ", ".join(f"{who} {t.starts[who]}" for who in OUTAGE_WATCHERS), flush=True)
    return out


# -- the report -------------------------------------------------------------------------------

def verdict(values: list[float], target: float) -> str:
    p95 = pct(values, 95)
    return (f"p95 <= {fmt_seconds(target)}: **met**" if p95 <= target
            else f"p95 <= {fmt_seconds(target)}: **NOT met** ({fmt_seconds(p95)})")


def render(b: Bench, trials: int, poll_trials: int, loop: LoopResult | None,
           idles: list[IdleResult], facts: dict[str, Any] | None, pre: PreResult | None,
           outages: list[OutageTrial], outage: float) -> tuple[str, list[str]]:
    """The table and the notes of the phases that ran."""
    rows: list[list[Any]] = []
    notes: list[str] = []
    if facts is not None:
        r, n = render_detect(b, trials, poll_trials, facts)
        rows += r
        notes += n
    if loop is not None:
        r, n = render_loop(loop)
        rows += r
        notes += n
    if idles:
        r, n = render_idle(idles)
        rows += r
        notes += n
    if pre is not None:
        r, n = render_pre(b, pre)
        rows += r
        notes += n
    if outages:
        r, n = render_outage(outages, outage)
        rows += r
        notes += n
    table = markdown_table(["#", "Measure", "opskit", "Peer", "Peer value",
                            "Peer / opskit (p50 / p95)", "Target"], rows)
    notes.append("Host load (1-minute load average, 2 cores; other sessions share this "
                 "engine): " + "; ".join(b.loads) + ".")
    notes += [f"Problem: {p}" for p in b.problems]
    return table, notes


def render_detect(b: Bench, trials: int, poll_trials: int, facts: dict[str, Any]
                  ) -> tuple[list[list[Any]], list[str]]:
    s = b.get
    pn = f"{poll_trials} trials"
    on = f"{trials} trials"
    rows: list[list[Any]] = [
        ["1a", f"crash (`kill -9` from the host, exit 137; `die` event) to decision, p50 / p95 "
         f"({on})",
         pair(s("crash.decision.opskit")), "poller every 5 s (`status=exited`), to its "
         f"restart call ({pn})", pair(s("crash.request.poller")),
         times(s("crash.request.poller"), s("crash.decision.opskit")),
         verdict(s("crash.decision.opskit"), TARGETS["crash"])],
        ["1a", f"crash (`die` event) to restart request (journal `started` line) ({on})",
         pair(s("crash.request.opskit")), f"same poller ({pn})", pair(s("crash.request.poller")),
         times(s("crash.request.poller"), s("crash.request.opskit")), ""],
        ["1a", f"crash with exit 143 (httpd killed inside) to decision ({on})",
         pair(s("exit.decision.opskit")), "", "", "",
         verdict(s("exit.decision.opskit"), TARGETS["crash"])],
        ["1a", f"same, to restart request ({on})", pair(s("exit.request.opskit")), "", "", "",
         ""],
        ["1a", "opskit's `time_to_detect_s` (`detected_at` - the finding's `since`) "
         f"({len(s('crash.metric.opskit'))} recoveries)", pair(s("crash.metric.opskit")),
         "", "", "", verdict(s("crash.metric.opskit"), TARGETS["crash"])],
        ["1b", f"`health_status: unhealthy` event to restart request ({on})",
         pair(s("unhealthy.request.opskit")), "poller every 5 s (`health=unhealthy`, like "
         f"docker-autoheal), to its restart call ({pn})", pair(s("unhealthy.request.poller")),
         times(s("unhealthy.request.poller"), s("unhealthy.request.opskit")),
         verdict(s("unhealthy.request.opskit"), TARGETS["unhealthy"])],
        ["2", f"crash to healthy again (`die` to `health_status: healthy` events) ({on})",
         pair(s("crash.recover.opskit")), f"Docker `restart=always`, no watchdog ({on})",
         pair(s("crash.recover.docker")),
         times(s("crash.recover.docker"), s("crash.recover.opskit")),
         verdict(s("crash.recover.opskit"), TARGETS["recover"])],
        ["2", "", "", f"poller every 5 s ({pn})", pair(s("crash.recover.poller")),
         times(s("crash.recover.poller"), s("crash.recover.opskit")), ""],
    ]
    notes = [
        f"Trials: {trials} for opskit and for Docker's policy, {pn} for the poller (each poller "
        "trial waits up to 5 s; with so few, its p95 is its maximum). Percentiles are nearest "
        f"rank: p95 of {trials} is the {math.ceil(95 * trials / 100)}th smallest. Each trial "
        "deploys a fresh container (so no trial inherits another's backoff, crash-loop count "
        "or flap window), waits until it is healthy, injects the fault and removes the "
        "container; the trials of all watchers are interleaved. Poller trials wait a random "
        "0-5 s before the fault.",
        "Times are from the engine's own event timestamps (`timeNano`, read on our own "
        "`docker events` subscription) to `time.time()` stamps written by the watcher, on one "
        "host and one clock. The decision is the action journal's `detected_at`; the restart "
        "request is its `started` line, written (fsync'd) after the lease and the evidence and "
        "just before `docker restart`.",
        f"Crash (`kill -9` of the container's PID from the host, exit 137) to decision, all "
        f"trials (ms): {fmt_list(s('crash.decision.opskit'))}; to restart request: "
        f"{fmt_list(s('crash.request.opskit'))}. The journal hands the `die` record to its "
        f"subscribers {pair(s('crash.delivered.opskit'))} (p50 / p95) after the event and the "
        "watchdog decides from the event alone: it does not inspect first, because the engine "
        "answers an inspect only once it has finished its exit handling (it holds the "
        "container's lock through network and mount cleanup after emitting `die`): an inspect "
        "asked for as soon as our own subscription saw `die` (on the Docker-policy containers, "
        f"which nobody else watches) returned {pair(s('crash.inspect_after_die'))} after the "
        "event (a running container's inspect takes ~1 ms). Whether an exit 137 was the OOM "
        "killer is read from the evidence's inspect, which waits for that exit handling "
        "anyway, and journaled as `oom_killed`. opskit's own `time_to_detect_s` starts at the "
        "finding's `since`, here the `die` event's time; the engine stamps `State.FinishedAt` "
        f"{pair(s('crash.finished_to_die'))} before that event (a finding read from an "
        "inspect starts there).",
        f"Crash with exit 143 (httpd killed inside), to decision (ms): "
        f"{fmt_list(s('exit.decision.opskit'))}; to restart request: "
        f"{fmt_list(s('exit.request.opskit'))}.",
        "From the decision to the restart request, `recover` takes the incident lease (a "
        "`docker create`, from the image ID the watchdog already knows) and captures the "
        "evidence (inspect, last logs) side by side, then writes the evidence file and the "
        "fsync'd `started` line. p50 / p95 from the decision: the lease's `Created` stamp (the "
        "engine stamps it when the create begins) after a crash "
        f"{pair(s('crash.step.lease'))}, after exit 143 {pair(s('exit.step.lease'))}, after "
        f"unhealthy {pair(s('unhealthy.step.lease'))}; the evidence's `captured_at` after a "
        f"crash {pair(s('crash.step.evidence'))} (its inspect waits for the exit handling), "
        f"after exit 143 {pair(s('exit.step.evidence'))}, after unhealthy "
        f"{pair(s('unhealthy.step.evidence'))}; from the evidence to the `started` line (the "
        "rest of the lease's create, the files) after a crash "
        f"{pair(s('crash.step.line'))}, after exit 143 {pair(s('exit.step.line'))}, after "
        f"unhealthy {pair(s('unhealthy.step.line'))}.",
        f"Unhealthy event to decision (ms): {fmt_list(s('unhealthy.decision.opskit'))}; to "
        f"restart request: {fmt_list(s('unhealthy.request.opskit'))}. Journal delivery "
        f"{pair(s('unhealthy.delivered.opskit'))}.",
        f"Recovery after a crash, opskit (s): {fmt_list(s('crash.recover.opskit'), 1)}; "
        f"Docker's policy: {fmt_list(s('crash.recover.docker'), 1)} (slowest: opskit in round "
        f"{slowest(s('crash.recover.opskit'))}, Docker in round "
        f"{slowest(s('crash.recover.docker'))}). Split (p50 / p95): opskit "
        f"`die` to restart request {pair(s('crash.request.opskit'))}, request to the engine's "
        f"`start` event {pair(s('crash.start.opskit'))}, `start` to `healthy` "
        f"{pair(s('crash.healthy.opskit'))}; Docker `die` to its own `start` "
        f"{pair(s('crash.request.docker'))} (a 100 ms backoff, then the start itself), `start` "
        f"to `healthy` {pair(s('crash.healthy.docker'))}; poller `die` to restart call "
        f"{pair(s('crash.request.poller'))}, call to `start` {pair(s('crash.start.poller'))}, "
        f"`start` to `healthy` {pair(s('crash.healthy.poller'))}. The healthcheck bounds "
        "recovery for every watcher: the engine runs the first probe one interval (1 s) after "
        "the start, so nobody is healthy again sooner than detection + start + 1 s + one "
        "probe. opskit's own `time_to_recover_s` (to its verify poll, every 0.1 s): "
        f"{pair(s('crash.ttr.opskit'))}.",
        f"Poller: crash to restart call (s) {fmt_list(s('crash.request.poller'), 1)}; "
        f"unhealthy to restart call {fmt_list(s('unhealthy.request.poller'), 1)}; "
        f"{b.poller.polls} polls, {b.poller.errors} errors.",
    ]
    st = facts.get("status") or {}
    notes.append(f"Trial watchdog counters: {st.get('events')} events, {st.get('passes')} "
                 f"re-lists, {st.get('actions')} actions, {st.get('errors')} errors.")
    return rows, notes


def render_loop(loop: LoopResult) -> tuple[list[list[Any]], list[str]]:
    acts = loop.attempts
    q_after = loop.quarantined_after if loop.quarantined_after is not None else math.inf
    fast = [a for a in acts if a["started"] <= q_after]  # the budget; then slow retries
    rows: list[list[Any]] = []
    kinds: dict[str, int] = {}
    for a in fast:
        kind = f"{a['reason']} {a.get('step') or ''}".strip()
        kinds[kind] = kinds.get(kind, 0) + 1
    made = ", ".join(f"{n} x {k}" for k, n in kinds.items())
    gaps = ", ".join(f"{g:.2f} s" for g in loop.backoffs[:max(len(fast) - 1, 0)]) or "none"
    q_at = f"{loop.quarantined_after:.1f} s" if loop.quarantined_after is not None else "never"
    slow_cap = LOOP_POLICY.get("quarantine_retry", RecoveryPolicy().quarantine_retry)
    policy_waits = ", ".join(
        f"{LOOP_POLICY['backoff_initial'] * LOOP_POLICY['backoff_factor'] ** k:g} s"
        for k in range(max(len(fast) - 1, 1)))
    rows += [
        ["3", f"crash loop (demo-crash exits after 0.3 s), {loop.period:.0f} s from the first "
         f"start to {QUIET_AFTER:g} s after the quarantine",
         f"quarantined at {q_at} after {len(fast)} attempts ({made}); waits from a failed "
         f"verify to the next attempt {gaps} (policy: {policy_waits}); then "
         f"{loop.quiet_restarts} start{'' if loop.quiet_restarts == 1 else 's'} in the "
         f"{QUIET_AFTER:g} s after (slow retries in "
         f"quarantine, backoff capped at `quarantine_retry` {slow_cap:g} s)",
         "Docker `restart=always`, same crasher, same period",
         f"{loop.docker_starts} starts ({loop.docker_starts - 1} restarts), never stops; last "
         f"gap {loop.docker_gaps[-1]:.1f} s" if loop.docker_gaps else
         f"{loop.docker_starts} starts", f"{loop.docker_starts - 1} vs {len(acts)} restarts", ""],
        ["3", "", "", "poller every 5 s, same crasher, same period",
         f"{loop.poller_starts} starts ({loop.poller_starts - 1} restarts), never stops",
         f"{loop.poller_starts - 1} vs {len(acts)} restarts", ""],
    ]
    notes = [
        "Crash loop, opskit's attempts (seconds from the deploy): " + "; ".join(
            f"#{a['attempt']} {a['reason']} {a.get('step')} started {a['started']:.2f} s, "
            f"{a['result']} at {a['done']:.2f} s" for a in acts) + ". Starts of attempts "
        f"{', '.join(f'{g:.2f} s' for g in loop.started_gaps)} apart. Other decisions: " + (
            "; ".join(f"{n['result']} ({n['reason']}{': ' + n['why'] if n['why'] else ''}) at "
                      f"{n['ts']:.2f} s" for n in loop.notes) or "none") + ". Each attempt "
        "started this long after one of the watchdog's re-list ticks (every 5 s from its "
        f"start): {', '.join(f'{o:.2f} s' for o in loop.relist_offsets)}." + (
            " Every attempt after the first began just after a re-list tick, not 0.5 s or 1 s "
            "after the failed verify: the container's next `die` reached the watchdog while it "
            "was still verifying the previous attempt, was dropped then, and was acted on only "
            "by the next re-list." if len(loop.relist_offsets) > 1
            and all(o < 0.5 for o in loop.relist_offsets[1:]) else ""),
        f"Crash loop, Docker's policy: starts {', '.join(f'{g:.1f}' for g in loop.docker_gaps)}"
        " s apart (100 ms doubling, plus the 0.3 s run).",
    ]
    return rows, notes


def render_idle(idles: list[IdleResult]) -> tuple[list[list[Any]], list[str]]:
    rows: list[list[Any]] = []
    what = {"own": "watchdog with its own journal (life-cycle events only: what "
                   "`ops.watch()` starts when no `ops.journal()` runs)",
            "full": "watchdog sharing a running `ops.journal()` (every engine event)"}
    for idle in idles:
        rows.append([
            "4", f"CPU over {idle.wall:.0f} s, {idle.containers} healthy demo containers "
            f"(healthcheck every 1 s); {what[idle.kind]}, {idle.events / idle.wall:.0f} events/s "
            "journaled", f"{idle.ours_pct:.2f} % of a core (this process)",
            "poller every 5 s (a process of its own), same window",
            f"{idle.peer_pct:.3f} % of a core",
            f"{idle.peer_pct / idle.ours_pct:.2f}x (opskit costs "
            f"{idle.ours_pct / idle.peer_pct:.0f}x more)" if idle.ours_pct > 0 < idle.peer_pct
            else "n/a",
            f"<= 2 %: **{'met' if idle.ours_pct <= TARGETS['cpu'] else 'NOT met'}**"])
    notes = [
        *[f"CPU by thread, {idle.kind} journal (% of a core): " + ", ".join(
            f"{k} {v:.2f}" for k, v in sorted(idle.by_thread.items(), key=lambda kv: -kv[1])
            if v >= 0.005) + f"; the watchdog made {idle.polls}; {idle.restarts} restarts by "
          "either watcher in the window; host load " + idle.load + "." for idle in idles],
        "The journal's reader parses each engine event and masks its attributes (every exec "
        "event of an opskit container carries all its labels) before queueing it, the writer "
        "serializes and appends it, the re-list lists the watched containers every 5 s and "
        "inspects only those whose listing shows a change of state or health; "
        "the watchdog's own event loop skips everything but life-cycle events. Each probe is "
        "three events (exec_create, exec_start, exec_die). The poller's figure is its whole "
        "Python process (two list calls every 5 s). The idle fleet keeps the image's probe and "
        "1 s interval but with a 5 s probe timeout (see the script). The two windows run one "
        "after the other on the same fleet, the poller process running through both.",
    ]
    return rows, notes


def render_pre(b: Bench, pre: PreResult) -> tuple[list[list[Any]], list[str]]:
    s = b.get
    on = f"{pre.trials} trials"
    late = f"{PRE_LATE:g} s"

    def two(step: str) -> str:
        return f"{pair(s(f'pre.{step}.opskit'))} ({pair(s(f'pre.{step}.opskit_late'))})"

    rows: list[list[Any]] = [
        ["5", "failure before the watchdog: a `restart=no` demo web container crashed (`kill -9` "
         "from the host) and exited while nothing watched; the watcher started as soon as the "
         "engine said exited; from its start to `health_status: healthy` "
         f"({on})", pair(s("pre.recover.opskit")),
         "Docker's restart policy (same crash, then `docker update --restart=always`)",
         f"never ({pre.docker_starts} starts in {pre.docker_seconds:.0f} s; still "
         f"{pre.docker_state})", "opskit recovers, Docker never", ""],
        ["5", "", "", f"poller every 5 s, started after the failure (first poll at once; {on})",
         pair(s("pre.recover.poller")),
         times(s("pre.recover.poller"), s("pre.recover.opskit")), ""],
        ["5", f"same, the watcher started {late} after the exit ({on})",
         pair(s("pre.recover.opskit_late")), "poller above (started at once; its time does "
         "not depend on when)", pair(s("pre.recover.poller")),
         times(s("pre.recover.poller"), s("pre.recover.opskit_late")), ""],
    ]
    notes = [
        "Failure before the watchdog: each trial deploys a fresh container, waits until it is "
        "healthy, crashes it from the host (`ops.chaos(\"crash\")`), waits until the engine "
        "says `exited`, then starts the watcher: a new `ops.watch([name], "
        "policy=RecoveryPolicy(verify_timeout=10))` (its first, level-triggered pass runs "
        "inside `start()`), or a new poller thread that lists only that container. Time from "
        "just before `wd.start()` (or the poller's start) to the engine's `health_status: "
        f"healthy` event. opskit (s): {fmt_list(s('pre.recover.opskit'), 2)}; started {late} "
        f"after the exit: {fmt_list(s('pre.recover.opskit_late'), 2)}; poller: "
        f"{fmt_list(s('pre.recover.poller'), 2)}. The container had been down "
        f"{pair(s('pre.down.opskit'))} when the watchdog started (late: "
        f"{pair(s('pre.down.opskit_late'))}).",
        f"opskit split (p50 / p95; started {late} late in brackets): `start()` returned after "
        f"{two('first_pass')} (the first pass: the listing, an inspect, and the stop-intent "
        "check, which here reads the engine's own event memory since no journal saw the "
        f"crash); start to the action journal's `started` line {two('request')}, that line "
        f"to the engine's `start` event {two('start')}, `start` to `healthy` "
        f"{two('healthy')} (the first probe runs 1 s after the start). The stop-intent check "
        "asks the engine for `docker events --since StartedAt-1s --until FinishedAt+2s` "
        "(`opskit.recover.intent._engine_events`), and the engine holds an events request whose "
        "`--until` is in the future open until that time: a watchdog that starts within 2 s "
        "of the exit waits out the rest of those 2 s before it acts (checked on its own: a "
        f"request with `--until` 2 s ahead took {pre.until_ahead:.2f} s, one with `--until` "
        f"just past {pre.until_past:.3f} s). "
        f"Started {late} after the exit it does not wait.",
        f"The poller's restart call came {pair(s('pre.request.poller'))} after its start: a "
        "poller started after the failure lists at once and restarts whatever it finds "
        "exited, with no question whether the stop was on purpose. It is the bench's poller, "
        "which also restarts `status=exited` containers; docker-autoheal itself restarts "
        "only `health=unhealthy` ones and would never restart this one.",
        "Docker's restart policy acts only on exits it sees while the policy is set: the "
        "reference container, crashed the same way and then given `restart=always` with "
        f"`docker update`, had {pre.docker_starts} `start` events in the {pre.docker_seconds:.0f}"
        f" s of this phase and ended `{pre.docker_state}`.",
    ]
    return rows, notes


OUTAGE_TEXT = {
    "qr10": "opskit watchdog, `RecoveryPolicy(max_attempts=3, backoff_initial=0.5, "
            "quarantine_retry=10)`",
    "default": "opskit watchdog, `RecoveryPolicy(max_attempts=3, backoff_initial=0.5)` "
               f"(`quarantine_retry={RecoveryPolicy().quarantine_retry:g}`, the default)",
    "dep": "opskit watchdog, `quarantine_retry=10` as above, the app's spec with "
           "`depends_on=[db]` and db watched (`action=\"none\"`: never acted on)",
    "docker": "Docker `restart=always` on the app, no watchdog",
}


def secs(values: list[float], wait: float) -> str:
    """``p50 / p95`` of seconds, ``> wait`` for an app not seen healthy in time."""
    def one(q: float) -> str:
        v = pct(values, q)
        return f"> {wait:g} s" if math.isinf(v) else f"{v:.1f} s"
    return f"{one(50)} / {one(95)}"


def ratios(peer: list[float], ours: list[float]) -> str:
    """Peer / opskit at p50 and p95, for seconds or counts."""
    def one(q: float) -> str:
        a, b = pct(peer, q), pct(ours, q)
        if math.isinf(a) or math.isinf(b):
            return "n/a"
        if b == 0:
            return f"{a:g} vs 0"
        return f"{a / b:.1f}x"
    return f"{one(50)} / {one(95)}"


def render_outage(outages: list[OutageTrial], outage: float
                  ) -> tuple[list[list[Any]], list[str]]:
    n = len(outages)
    wait = outages[0].wait

    def col(field_: str, who: str) -> list[float]:
        return [float(getattr(t, field_)[who]) for t in outages]

    def counts(who: str) -> str:
        c = col("starts", who)
        return (f"{pct(c, 50):.0f} / {pct(c, 95):.0f} (trials: "
                f"{', '.join(f'{x:.0f}' for x in c)})")

    rows: list[list[Any]] = []
    for who in OUTAGE_POLICIES:
        rows += [
            ["6a", f"dependency outage (db stopped {outage:g} s, then started), from db's "
             f"`start` to the app healthy again ({n} trials); {OUTAGE_TEXT[who]}",
             secs(col("recovered", who), wait), f"{OUTAGE_TEXT['docker']}, same outage",
             secs(col("recovered", "docker"), wait),
             ratios(col("recovered", "docker"), col("recovered", who)), ""],
            ["6b", f"same, the app's starts during the outage; {OUTAGE_TEXT[who]}",
             counts(who), f"{OUTAGE_TEXT['docker']}, same outage", counts("docker"),
             ratios(col("starts", "docker"), col("starts", who)), ""],
        ]
    notes = [
        "Dependency outage: the app is `opskit/demo-web:latest` with the command `sh -c "
        "'until timeout 1 wget -q -O /dev/null http://DB:8080/health; do exit 1; done; httpd "
        "-p 8080 -h /www; while timeout 1 wget -q -O /dev/null http://DB:8080/health; do "
        "sleep 0.5; done; echo lost db; exit 1'` (DB: db's container name, resolved by the "
        "engine's DNS on a user network of this run) and the demo's probe (`wget -q -O- "
        "http://127.0.0.1:8080/health`, interval 1 s, timeout 1 s, retries 2); db is demo-web "
        "on the same network. It refuses to start without db, and exits 1 within about 0.5 s "
        "of losing it (checked in every trial: each app had at least one `die` during the "
        "outage and none was healthy before db's return). `timeout 1 wget`, not `wget -T 1`: "
        "the image's static busybox 1.35 wget exits with SIGSEGV (139) when given `-T`, even "
        "against a server that answers.",
        "Each trial deploys a fresh db and one app per watcher, all depending on the same db "
        "(one outage, seen by every watcher at once), starts one watchdog for the opskit apps "
        "(a policy per service), waits until all are healthy, stops db (`ops.stop`, `-t 1`), "
        f"starts it {outage:g} s after its `die` event (outages measured from `die` to `start`: "
        + ", ".join(f"{t.outage:.1f} s" for t in outages) + "), and waits up to "
        f"{wait:g} s for every app to be healthy. Starts are the engine's `start` events of "
        "every container with the app's name (a recreate makes a new container with the same "
        "name) on our own `docker events` subscription, from db's `die` to its `start`; "
        "recovery is db's `start` event to the app's first `health_status: healthy` event. "
        "Host load at each outage's start: " + ", ".join(t.load for t in outages) + ".",
        *[f"Outage {k + 1}: " + "; ".join(
            f"{who}: {t.starts[who]} starts during the outage"
            + (f" ({', '.join(f'{g:.1f}' for g in t.gaps[who])} s apart)" if t.gaps[who] else "")
            + f", {t.after[who]} from db's return to healthy, healthy "
            + (f"{t.recovered[who]:.1f} s after db's return" if not math.isinf(t.recovered[who])
               else "not seen")
            + (f"; actions (from db's `die`): {', '.join(t.attempts[who]) or 'none'}; "
               + (f"quarantined at +{t.quarantined[who]:.1f} s"
                  if t.quarantined[who] is not None else "not quarantined")
               + (f"; {t.waited[who]} 'waiting for dependency' notes" if t.waited[who] else "")
               if who in t.attempts else "")
            for who in OUTAGE_WATCHERS) + "." for k, t in enumerate(outages)],
        "How each paces its retries: Docker's policy waits 100 ms doubling between starts "
        "(reset only after 10 s of running) and never stops, so its starts thin out during "
        "the outage and its next start after db's return waits out whatever backoff is "
        "running. opskit acts on the first `die` at once, then after 0.5 s, 1 s (the fast "
        "budget: 3 attempts climbing the ladder restart, recreate), then quarantines and "
        "keeps retrying with the backoff still doubling but capped at `quarantine_retry`; "
        "its wait after db's return is the rest of the current slow backoff. With "
        "`depends_on`, the watchdog makes no attempt while db is down and starts the app on "
        "the first re-list (every 5 s) that sees db running again.",
    ]
    return rows, notes


def slowest(values: list[float]) -> int:
    """The 1-based round of the largest value."""
    return values.index(max(values)) + 1 if values else 0


def fmt_list(values: Iterable[float], digits: int = 0) -> str:
    vals = list(values)
    if digits == 0:
        return ", ".join(f"{v * 1e3:.0f}" for v in vals)
    return ", ".join(f"{v:.{digits}f}" for v in vals)


# -- cleanup ----------------------------------------------------------------------------------

def cleanup(api: Any, token: str, known: set[str]) -> int:
    """Remove this run's containers and the lease containers opskit made for them."""
    removed = 0
    mine = api.containers(all=True, filters={"label": [f"{BENCH_LABEL}={token}"]})
    known |= {c["Id"] for c in mine}
    for item in mine:
        with contextlib.suppress(Exception):
            api.remove_container(item["Id"], force=True, v=True)
            removed += 1
    leases = api.containers(all=True, filters={"label": [f"{L.ROLE}=lease",
                                                         f"{L.SCOPE}={SCOPE}"]})
    for item in leases:
        labels = item.get("Labels") or {}
        ours = labels.get(L.PREFIX + "lease-for") in known or (
            labels.get(L.PREFIX + "lease-for") == "deploy"
            and labels.get(L.PREFIX + "lease-holder", "").endswith(f" pid {os.getpid()}"))
        if ours:
            with contextlib.suppress(Exception):
                api.remove_container(item["Id"], force=True)
                removed += 1
    return removed


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="opskit and Docker trials (20)")
    parser.add_argument("--poll-trials", type=int, default=6,
                        help="poller trials (6; each waits up to 5 s)")
    parser.add_argument("--containers", type=int, default=50, help="idle fleet size (50)")
    parser.add_argument("--seconds", type=float, default=60.0, help="idle CPU window (60)")
    parser.add_argument("--pre-trials", type=int, default=6,
                        help="trials of the failure before the watchdog (6)")
    parser.add_argument("--outage-trials", type=int, default=3,
                        help="dependency outages (3; each ~70-110 s)")
    parser.add_argument("--outage", type=float, default=40.0,
                        help="seconds the dependency stays down (40)")
    parser.add_argument("--outage-wait", type=float, default=120.0,
                        help="seconds after the dependency's return to wait for every app (120)")
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated phases to run: detect (1-2), loop (3), pre (5), "
                        "outage (6), idle (4); all by default")
    parser.add_argument("--keep-state", action="store_true",
                        help="keep the temporary OPSKIT_HOME (journals, evidence)")
    args = parser.parse_args()
    cases = {c.strip() for c in args.cases.split(",") if c.strip()}
    if not cases or cases - set(CASES):
        parser.error(f"--cases: choose from {', '.join(CASES)}")

    revision = code_revision()
    home = tempfile.mkdtemp(prefix="opskit-bench-recovery-")
    os.environ["OPSKIT_HOME"] = home
    token = os.urandom(3).hex()
    ops = opskit.connect(scope=SCOPE)
    ops.demo_images()
    api = ops.engine.api
    obs = Observer(ops.host, f"{BENCH_LABEL}={token}")
    obs.start()
    poller = Poller(ops.host, [f"{BENCH_LABEL}={token}", f"{PEER_LABEL}=poller"])
    journal = ops.journal()
    journal.start()
    tap = JournalTap(journal)
    b = Bench(ops=ops, api=api, token=token, obs=obs, poller=poller, journal=journal, tap=tap,
              actions_path=ops.action_journal.path, prefix=f"rb{token}")

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        if not journal.wait_connected(10):
            raise BenchError("the event journal did not connect")
        tap.start()
        poller.start()
        print(f"run {token}: scope {SCOPE}, OPSKIT_HOME {home}", flush=True)
        facts = loop = pre = None
        outages: list[OutageTrial] = []
        idles: list[IdleResult] = []
        if "detect" in cases:
            b.loads.append(f"{loadavg()} when the trials began")
            facts = run_trials(b, args.trials, args.poll_trials)
        if "loop" in cases:
            print("crash loop...", flush=True)
            b.loads.append(f"{loadavg()} when the crash loop began")
            loop = crash_loop(b)
            print(f"crash loop: {len(loop.attempts)} attempts, quarantined at "
                  f"{loop.quarantined_after}", flush=True)
        if "pre" in cases:
            b.loads.append(f"{loadavg()} when the failures before the watchdog began")
            pre = before_watchdog(b, args.pre_trials)
        if "outage" in cases:
            b.loads.append(f"{loadavg()} when the dependency outages began")
            outages = dependency_outage(b, args.outage_trials, args.outage, args.outage_wait)
        # only opskit may run in this process while its CPU is measured
        poller.stopping.set()
        poller.join(POLL_EVERY + 15)
        obs.close()
        tap.close()
        journal.stop()  # each idle window starts the journal it measures
        if "idle" in cases:
            idles = idle_cost(b, args.containers, args.seconds)
        table, notes = render(b, args.trials, args.poll_trials, loop, idles, facts, pre,
                              outages, args.outage)
    finally:
        poller.stopping.set()
        obs.close()
        tap.close()
        removed = cleanup(api, token, b.known)
        for net in b.networks:
            try:
                ops.network_remove(net, missing_ok=True)
            except Exception as exc:
                print(f"network {net} not removed: {exc}", flush=True)
        with contextlib.suppress(Exception):
            journal.stop()
        signal.signal(signal.SIGTERM, previous)
        print(f"cleanup: {removed} containers removed", flush=True)
        if args.keep_state:
            print(f"state kept in {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)

    print("\n" + table + "\n\n" + "\n".join(f"- {n}" for n in notes))
    write_results(RESULTS, "Recovery benchmark: opskit's watchdog vs Docker's restart policy and "
                  "a 5 s poller", ops.engine.info, table, notes, script="bench/bench_recovery.py",
                  revision=revision)
    ops.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

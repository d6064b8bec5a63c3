"""Recovery: opskit's watchdog against Docker's restart policy and an autoheal-style poller.

    python bench/bench_recovery.py                      # the whole run (~12 min)
    python bench/bench_recovery.py --trials 5 --poll-trials 2 --seconds 15   # a quick look

Everything runs side by side in one run, on the demo web service (busybox httpd, healthcheck
every 1 s, 3 retries), with trials interleaved so every watcher sees the same engine:

1. detection latency
   a. from a crash (``ops.chaos("crash")``: the host kills the container's PID; the crash time
      is the engine's ``die`` event) to the watchdog's decision (the action journal's
      ``detected_at``) and to its restart request (the journal's ``started`` line, written just
      before ``docker restart``); opskit's own figure ``time_to_detect_s`` of
      :func:`opskit.metrics.recovery_times` (``detected_at`` minus the finding's ``since``: the
      ``die`` event's time when decided from the event) beside it. Target p95 <= 50 ms.
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

Every container carries ``opskit-bench.run=<token>`` and is removed at the end, also on failure,
Ctrl-C or SIGTERM, with the lease containers opskit's recoveries made for them. opskit's own
files (keys, journals, evidence) go to a temporary ``OPSKIT_HOME`` (kept with
``--keep-state``). The markdown table is printed and written to ``bench/results/recovery.md``.
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
from opskit import labels as L
from opskit.metrics import recovery_times
from opskit.policy import RecoveryPolicy

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
                item = Seen(int(ev.get("timeNano") or 0), str(ev.get("Action", "")),
                            str(actor.get("ID", "")),
                            str((actor.get("Attributes") or {}).get("exitCode", "")))
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
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for s in self.seen:
                    if s.cid == cid and s.action == action and s.ns > since_ns:
                        return s
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"no '{action}' event of {cid[:12]} within {timeout:g} s")
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
               healthcheck: opskit.Healthcheck | None = None) -> list[str]:
        spec = opskit.ServiceSpec(name=name, image=image, labels=self.labels(peer),
                                  restart=restart, env=env or {}, replicas=replicas,
                                  healthcheck=healthcheck)
        ids = list(self.ops.deploy(spec, wait=wait, timeout=60).ids)
        self.known.update(ids)
        return ids

    def remove(self, cid: str) -> None:
        with contextlib.suppress(Exception):
            self.api.remove_container(cid, force=True, v=True)

    def healthy_web(self, name: str, *, restart: str = "no", peer: bool = False) -> str:
        """Deploy one demo web container, healthy and seen healthy by every watcher."""
        cid = self.deploy(name, restart=restart, peer=peer)[0]
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
        note = wait_line(b.actions_path, lambda d: d.get("actor") == wd.actor and d.get(
            "container_id") == ours and d.get("action") == "quarantine", 90,
                         "crash loop: quarantine")
        t_q = float(note["ts"])
        time.sleep(QUIET_AFTER)
        t_end = time.time()
        lines = [d for d in action_lines(b.actions_path) if d.get("actor") == wd.actor
                 and d.get("container_id") == ours]
        starts = {d["id"]: d for d in lines if d.get("phase") == "started"}
        dones = [d for d in lines if d.get("phase") == "done" and d["id"] in starts]
        attempts = [{"attempt": (d.get("details") or {}).get("attempt"), "reason": d["reason"],
                     "result": d["result"], "started": starts[d["id"]]["ts"] - t0,
                     "done": d["ts"] - t0, "error": d.get("error", "")} for d in dones]
        attempts.sort(key=lambda a: a["started"])
        gaps = [b2["started"] - a["started"] for a, b2 in itertools.pairwise(attempts)]
        backoffs = [b2["started"] - a["done"] for a, b2 in itertools.pairwise(attempts)]
        others = [{"result": d["result"], "reason": d["reason"], "ts": d["ts"] - t0,
                   "why": (d.get("details") or {}).get("why", "")}
                  for d in lines if d["id"] not in starts]
        t0_ns, t_end_ns, t_q_ns = int(t0 * 1e9), int(t_end * 1e9), int(t_q * 1e9)
        quiet = len(b.obs.find(ours, "start", t_q_ns, t_end_ns)) + len(
            b.obs.find(ours, "restart", t_q_ns, t_end_ns))
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


# -- the report -------------------------------------------------------------------------------

def verdict(values: list[float], target: float) -> str:
    p95 = pct(values, 95)
    return (f"p95 <= {fmt_seconds(target)}: **met**" if p95 <= target
            else f"p95 <= {fmt_seconds(target)}: **NOT met** ({fmt_seconds(p95)})")


def render(b: Bench, trials: int, poll_trials: int, loop: LoopResult, idles: list[IdleResult],
           facts: dict[str, Any]) -> tuple[str, list[str]]:
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
    acts = loop.attempts
    kinds: dict[str, int] = {}
    for a in acts:
        kinds[a["reason"]] = kinds.get(a["reason"], 0) + 1
    made = ", ".join(f"{n} x {k}" for k, n in kinds.items())
    gaps = ", ".join(f"{g:.2f} s" for g in loop.backoffs) or "none"
    q_at = f"{loop.quarantined_after:.1f} s" if loop.quarantined_after is not None else "never"
    rows += [
        ["3", f"crash loop (demo-crash exits after 0.3 s), {loop.period:.0f} s from the first "
         f"start to {QUIET_AFTER:g} s after the quarantine",
         f"quarantined at {q_at} after {len(acts)} attempts ({made}); waits from a failed "
         f"verify to the next attempt {gaps} (policy: 0.5 s, 1 s); {loop.quiet_restarts} "
         f"restarts in the {QUIET_AFTER:g} s after",
         "Docker `restart=always`, same crasher, same period",
         f"{loop.docker_starts} starts ({loop.docker_starts - 1} restarts), never stops; last "
         f"gap {loop.docker_gaps[-1]:.1f} s" if loop.docker_gaps else
         f"{loop.docker_starts} starts", f"{loop.docker_starts - 1} vs {len(acts)} restarts", ""],
        ["3", "", "", "poller every 5 s, same crasher, same period",
         f"{loop.poller_starts} starts ({loop.poller_starts - 1} restarts), never stops",
         f"{loop.poller_starts - 1} vs {len(acts)} restarts", ""],
    ]
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
    table = markdown_table(["#", "Measure", "opskit", "Peer", "Peer value",
                            "Peer / opskit (p50 / p95)", "Target"], rows)
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
        "Crash loop, opskit's attempts (seconds from the deploy): " + "; ".join(
            f"#{a['attempt']} {a['reason']} started {a['started']:.2f} s, {a['result']} at "
            f"{a['done']:.2f} s" for a in acts) + ". Starts of attempts "
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
        "Host load (1-minute load average, 2 cores; other sessions share this engine): "
        + "; ".join(b.loads) + ".",
    ]
    st = facts.get("status") or {}
    notes.append(f"Trial watchdog counters: {st.get('events')} events, {st.get('passes')} "
                 f"re-lists, {st.get('actions')} actions, {st.get('errors')} errors.")
    notes += [f"Problem: {p}" for p in b.problems]
    return table, notes


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
    parser.add_argument("--keep-state", action="store_true",
                        help="keep the temporary OPSKIT_HOME (journals, evidence)")
    args = parser.parse_args()

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
        b.loads.append(f"{loadavg()} when the trials began")
        facts = run_trials(b, args.trials, args.poll_trials)
        print("crash loop...", flush=True)
        b.loads.append(f"{loadavg()} when the crash loop began")
        loop = crash_loop(b)
        print(f"crash loop: {len(loop.attempts)} attempts, quarantined at "
              f"{loop.quarantined_after}", flush=True)
        # only opskit may run in this process while its CPU is measured
        poller.stopping.set()
        poller.join(POLL_EVERY + 15)
        obs.close()
        tap.close()
        journal.stop()  # each idle window starts the journal it measures
        idles = idle_cost(b, args.containers, args.seconds)
        table, notes = render(b, args.trials, args.poll_trials, loop, idles, facts)
    finally:
        poller.stopping.set()
        obs.close()
        tap.close()
        removed = cleanup(api, token, b.known)
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

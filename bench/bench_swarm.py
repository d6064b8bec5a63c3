"""Swarm: a lost node and a failed update, Swarm alone (or docker-py's defaults) beside opskit.

A real three-manager Swarm on this machine (``tests/support/swarm.py``: three dockerd, each in a
network namespace of its own, prefix ``okb``, subnet 192.168.251.0/24), the demo web image
loaded on each node (no registry). In one run, trials interleaved (A, B, A, B...):

1. node loss: a 3-replica demo web service (healthcheck every 0.5 s, 2 retries), one task per
   node, deployed by opskit; the dockerd of a node that is not the leader and runs a task is
   SIGKILLed (the node is lost, its container lives on). Measured: from the kill to 3 tasks
   ``running`` (healthy) on the other nodes, as the leader's manager reports them (polled every
   0.25 s, timeout ``--timeout``).
   A. Swarm alone: it moves the tasks once its dispatcher marks the node down (heartbeats).
   B. Swarm + opskit: ``swarm.watch(drain_lost_nodes=True, lost_after=2, every=0.5)`` drains
      the node once its engine has not answered for 2 s, so the tasks move at once.
   After each trial the node's dockerd is started again on its data root; opskit activates the
   node it drained once back (B), otherwise ``docker node update --availability active``.
2. failed update: the same service updated with ``WEB_PORT=9090`` (the server moves to 9090,
   the probe still asks 8080: every new task is unhealthy). Measured: from the update call to
   the update rolled back (``UpdateStatus.State == rollback_completed``), timeout ``--timeout``.
   A. docker-py's defaults: ``client.services.create(..., update_config=UpdateConfig(
      failure_action="rollback"))`` (parallelism 0, monitor unset: the engine's 5 s,
      stop-first), then ``service.update(env=[...])``.
   B. opskit: ``swarm.deploy(good)``, then ``swarm.deploy(bad)`` until ``RolloutFailed`` with
      ``rolled_back=True`` (monitor derived from the healthcheck, start-first, parallelism 1).
   A background sampler records the fewest healthy replicas during each update.

opskit's own files (scope key, action journal) go to a temporary ``OPSKIT_HOME``. The swarm is
torn down at the end, also on failure or Ctrl-C. Needs root.

    sudo .venv/bin/python bench/bench_swarm.py [--trials 3] [--loss-trials 3]
                                               [--update-trials 3] [--timeout 120]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker
from common import DEMO_IMAGE, fmt_seconds, markdown_table, ratio, write_results

import opskit
from opskit.base.labels import SCOPE as SCOPE_LABEL
from opskit.errors import RolloutFailed
from tests.support.swarm import LocalSwarm, SwarmNode

RESULTS = Path(__file__).resolve().parent / "results" / "swarm.md"
PREFIX, NET, SCOPE = "okb", 251, "bench"
POLL = 0.25
PROBE = ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"]
HEALTH = {"test": PROBE, "interval": 0.5, "timeout": 1, "retries": 2}
TASK_LABEL = "com.docker.swarm.service.name"


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank (with 3 values, p95 is the largest)."""
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(q * len(ordered) / 100)))
    return ordered[rank - 1]


def wait_until(check: Callable[[], bool], timeout: float, every: float = POLL) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if check():
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(every)


@dataclass
class Trial:
    """One trial: its time (None: not within the timeout) and what was seen meanwhile."""

    seconds: float | None
    done: bool
    detail: dict[str, Any] = field(default_factory=dict)


class Sampler:
    """Calls ``fn`` every ``POLL`` seconds on a thread; keeps the smallest value."""

    def __init__(self, fn: Callable[[], int]) -> None:
        self.fn, self.values = fn, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def low(self) -> int | None:
        return min(self.values) if self.values else None

    def share(self, at_least: int) -> float | None:
        """The share of samples with at least ``at_least``."""
        if not self.values:
            return None
        return sum(v >= at_least for v in self.values) / len(self.values)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.values.append(self.fn())
            self._stop.wait(POLL)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


class Bench:
    def __init__(self, swarm: LocalSwarm, timeout: float) -> None:
        self.lab, self.timeout = swarm, timeout
        self.leader = self._leader()
        self.client = self.leader.client(timeout=10)
        self.api = self.client.api
        for node in swarm.nodes:  # opt every node in for opskit's drains
            spec = self.api.inspect_node(node.node_id)
            body = dict(spec["Spec"])
            body["Labels"] = {**(body.get("Labels") or {}), SCOPE_LABEL: SCOPE}
            self.api.update_node(node.node_id, spec["Version"]["Index"], body)
        self.swarm = opskit.connect_swarm(swarm.urls, scope=SCOPE)
        self.engines = {n.node_id: docker.APIClient(base_url=n.url, timeout=10)
                        for n in swarm.nodes}

    def _leader(self) -> SwarmNode:
        api = self.lab.nodes[0].client(timeout=10).api
        for item in api.nodes():
            if (item.get("ManagerStatus") or {}).get("Leader"):
                return next(n for n in self.lab.nodes if n.node_id == item["ID"])
        raise RuntimeError("the swarm has no leader")

    # -- what the managers say -------------------------------------------------------------

    def running(self, service: str) -> list[dict[str, Any]]:
        """Tasks of ``service`` desired running and running (healthy)."""
        tasks = self.api.tasks(filters={"service": service, "desired-state": "running"})
        return [t for t in tasks if t["Status"]["State"] == "running"]

    def healthy(self, service: str) -> int:
        """Task containers of ``service`` running healthy now, whatever their desired state."""
        tasks = self.api.tasks(filters={"service": service})
        return sum(1 for t in tasks if t["Status"]["State"] == "running")

    def task_errors(self, service: str) -> list[str]:
        """Swarm's words on the service's tasks that ended: ``state: error``, each once."""
        seen: list[str] = []
        for task in self.api.tasks(filters={"service": service}):
            status = task["Status"]
            if status["State"] in ("running", "starting", "new", "pending", "assigned",
                                   "accepted", "preparing", "ready"):
                continue
            line = f"{status['State']}: {status.get('Err') or status.get('Message')}"
            if line not in seen:
                seen.append(line)
        return seen

    def node(self, node_id: str) -> dict[str, Any]:
        item = self.api.inspect_node(node_id)
        return {"state": item["Status"]["State"], "availability": item["Spec"]["Availability"],
                "version": item["Version"]["Index"], "spec": item["Spec"]}

    def all_ready(self) -> bool:
        return all(n["Status"]["State"] == "ready" and n["Spec"]["Availability"] == "active"
                   for n in self.api.nodes())

    def activate(self, node_id: str) -> None:
        item = self.node(node_id)
        if item["availability"] != "active":
            self.api.update_node(node_id, item["version"],
                                 {**item["spec"], "Availability": "active"})

    def remove(self, service: str) -> None:
        """Remove the service and wait until no node runs a container of it."""
        with contextlib.suppress(docker.errors.NotFound):
            self.api.remove_service(service)
        filters = {"label": f"{TASK_LABEL}={service}"}

        def gone() -> bool:
            return all(not api.containers(all=True, filters=filters)
                       for api in self.engines.values())

        if not wait_until(gone, 45):
            for api in self.engines.values():  # a returning node late to reconcile
                with contextlib.suppress(Exception):
                    for item in api.containers(all=True, filters=filters):
                        api.remove_container(item["Id"], force=True)

    # -- 1. node loss ----------------------------------------------------------------------

    def node_loss(self, case: str, name: str, pick: int) -> Trial:
        if not wait_until(self.all_ready, 90):
            raise RuntimeError("the swarm's nodes are not all ready and active")
        for attempt in range(3):
            self.swarm.deploy(opskit.ServiceSpec(name=name, image=DEMO_IMAGE, replicas=3,
                                                 healthcheck=HEALTH))
            spread = {t["NodeID"] for t in self.running(name)}
            if len(spread) == 3 or attempt == 2:
                break
            self.swarm.remove(name)
            self.remove(name)
        others = [n for n in self.lab.nodes if n is not self.leader and n.node_id in spread]
        if not others:
            raise RuntimeError(f"{name}: no task on a node other than the leader")
        victim = others[pick % len(others)]
        watch = (self.swarm.watch(drain_lost_nodes=True, lost_after=2, every=0.5)
                 if case == "B" else None)
        detail: dict[str, Any] = {"node": victim.netns, "spread": len(spread)}
        try:
            if watch is not None:
                wait_until(lambda: watch.counters["passes"] >= 2, 15)
            lowest, polls, ok_polls = 3, 0, 0
            before = {t["ID"] for t in self.api.tasks(filters={"service": name})}
            started = time.monotonic()
            victim.kill()
            seconds = None
            while (now := time.monotonic() - started) < self.timeout:
                with contextlib.suppress(docker.errors.APIError, OSError):
                    tasks = self.api.tasks(filters={"service": name})
                    new = [t for t in tasks if t["ID"] not in before]
                    if new:
                        detail.setdefault("replacement_at", now)
                    if any(t["DesiredState"] == "running" for t in new):
                        detail.setdefault("released_at", now)
                    moved = sum(1 for t in tasks if t["DesiredState"] == "running" and
                                t["Status"]["State"] == "running" and
                                t.get("NodeID") != victim.node_id)
                    lowest = min(lowest, moved)
                    polls, ok_polls = polls + 1, ok_polls + (moved >= 2)
                    state = self.node(victim.node_id)
                    if state["state"] == "down":
                        detail.setdefault("down_at", now)
                    if state["availability"] == "drain":
                        detail.setdefault("drained_at", now)
                    if moved >= 3:
                        seconds = now
                        break
                time.sleep(POLL)
            detail.update(lowest=lowest, share2=ok_polls / polls if polls else None)
            victim.start()
            back = wait_until(lambda: self.node(victim.node_id)["state"] == "ready", 90)
            detail["back"] = back
            if watch is not None:
                detail["opskit_activated"] = wait_until(
                    lambda: self.node(victim.node_id)["availability"] == "active", 20)
                detail["watch"] = dict(watch.counters)
        finally:
            if watch is not None:
                watch.stop()
            with contextlib.suppress(Exception):
                if victim.pid is None:
                    victim.start()
            with contextlib.suppress(Exception):
                wait_until(lambda: self.node(victim.node_id)["state"] == "ready", 60)
                self.activate(victim.node_id)
            with contextlib.suppress(Exception):
                self.swarm.remove(name)
            self.remove(name)
        return Trial(seconds, seconds is not None, detail)

    # -- 2. failed update ------------------------------------------------------------------

    def update_dockerpy(self, name: str) -> Trial:
        types = docker.types
        service = self.client.services.create(
            DEMO_IMAGE, name=name, mode=types.ServiceMode("replicated", 3),
            healthcheck=types.Healthcheck(test=PROBE, interval=500_000_000,
                                          timeout=1_000_000_000, retries=2),
            update_config=types.UpdateConfig(failure_action="rollback"))
        detail: dict[str, Any] = {}
        try:
            if not wait_until(lambda: len(self.running(name)) >= 3, 90):
                raise RuntimeError(f"{name}: 3 replicas did not come up")
            service.reload()
            seen: dict[str, float] = {}
            state = message = ""
            with Sampler(lambda: self.healthy(name)) as sampler:
                started = time.monotonic()
                service.update(env=["WEB_PORT=9090"])
                seconds = None
                while (now := time.monotonic() - started) < self.timeout:
                    with contextlib.suppress(docker.errors.APIError, OSError):
                        status = self.api.inspect_service(name).get("UpdateStatus") or {}
                        state, message = status.get("State", ""), status.get("Message", "")
                        if state:
                            seen.setdefault(state, round(now, 1))
                        if state == "rollback_completed":
                            seconds = now
                            break
                    time.sleep(POLL)
            detail.update(states=seen, final=state, message=message, lowest=sampler.low,
                          share2=sampler.share(2), zero=sampler.values.count(0) * POLL,
                          tasks=self.task_errors(name))
        finally:
            self.remove(name)
        return Trial(seconds, seconds is not None, detail)

    def update_opskit(self, name: str) -> Trial:
        good = opskit.ServiceSpec(name=name, image=DEMO_IMAGE, replicas=3, healthcheck=HEALTH)
        bad = opskit.ServiceSpec(name=name, image=DEMO_IMAGE, replicas=3, healthcheck=HEALTH,
                                 env={"WEB_PORT": "9090"})
        detail: dict[str, Any] = {}
        try:
            self.swarm.deploy(good)
            with Sampler(lambda: self.healthy(name)) as sampler:
                started = time.monotonic()
                try:
                    outcome = self.swarm.deploy(bad)
                    seconds, rolled = time.monotonic() - started, False
                    detail.update(final=outcome.state, message=outcome.message)
                except RolloutFailed as exc:
                    seconds, rolled = time.monotonic() - started, exc.rolled_back
                    detail.update(final=exc.state, message=exc.message_from_swarm)
            status = self.api.inspect_service(name).get("UpdateStatus") or {}
            detail.update(engine_state=status.get("State", ""), lowest=sampler.low,
                          share2=sampler.share(2), zero=sampler.values.count(0) * POLL,
                          tasks=self.task_errors(name))
        finally:
            with contextlib.suppress(Exception):
                self.swarm.remove(name)
            self.remove(name)
        return Trial(seconds if rolled else None, rolled, detail)


def summary(trials: list[Trial]) -> tuple[str, str, float | None, float | None]:
    times = [t.seconds for t in trials if t.seconds is not None]
    if not times:
        return "never", "never", None, None
    p50, p95 = pct(times, 50), pct(times, 95)
    return fmt_seconds(p50), fmt_seconds(p95), p50, p95


def leftover_netns() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=None,
                        help="trials of each case of both measures (overrides the two below)")
    parser.add_argument("--loss-trials", type=int, default=3)
    parser.add_argument("--update-trials", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds a trial may take before it counts as never")
    parser.add_argument("--keep-state", action="store_true",
                        help="keep the temporary OPSKIT_HOME (journals)")
    args = parser.parse_args()
    loss_n = args.trials or args.loss_trials
    update_n = args.trials or args.update_trials
    why = LocalSwarm.unavailable_reason()
    if why:
        sys.exit(f"bench_swarm: {why}")
    home = tempfile.mkdtemp(prefix="opskit-bench-swarm-")
    os.environ["OPSKIT_HOME"] = home

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    lab = LocalSwarm(PREFIX, 3, net=NET)
    loss: dict[str, list[Trial]] = {"A": [], "B": []}
    update: dict[str, list[Trial]] = {"A": [], "B": []}
    began = time.monotonic()
    try:
        lab.up(images=[DEMO_IMAGE])
        print(f"swarm up in {time.monotonic() - began:.0f} s", flush=True)
        bench = Bench(lab, args.timeout)
        with contextlib.closing(docker.APIClient(base_url=bench.leader.url, timeout=10)) as c:
            info = c.version()
        for i in range(loss_n):
            for case in ("A", "B"):
                trial = bench.node_loss(case, f"okb-loss-{case.lower()}{i}", i)
                loss[case].append(trial)
                print(f"node loss {case}{i}: "
                      f"{fmt_seconds(trial.seconds) if trial.done else 'never'} {trial.detail}",
                      flush=True)
        for i in range(update_n):
            for case in ("A", "B"):
                name = f"okb-upd-{case.lower()}{i}"
                trial = (bench.update_dockerpy(name) if case == "A"
                         else bench.update_opskit(name))
                update[case].append(trial)
                print(f"failed update {case}{i}: "
                      f"{fmt_seconds(trial.seconds) if trial.done else 'never'} {trial.detail}",
                      flush=True)
    finally:
        lab.close()
        signal.signal(signal.SIGTERM, previous)
        if not args.keep_state:
            shutil.rmtree(home, ignore_errors=True)
    left = leftover_netns()
    if left:
        print(f"WARNING: namespaces left behind: {left}", file=sys.stderr)
    total = time.monotonic() - began

    rows, cells = [], {}
    for measure, results, what, labels in (
            ("node loss: kill to 3 tasks running elsewhere", loss, "moved",
             {"A": "Swarm alone", "B": "Swarm + opskit watch (drain after 2 s)"}),
            ("failed update: update to rolled back", update, "rolled back",
             {"A": "docker-py defaults + failure_action=rollback",
              "B": "opskit `swarm.deploy`"})):
        for case in ("A", "B"):
            trials = results[case]
            p50, p95, v50, v95 = summary(trials)
            cells[(measure, case)] = (v50, v95)
            done = sum(t.done for t in trials)
            lows = [t.detail["lowest"] for t in trials if t.detail.get("lowest") is not None]
            shares = [t.detail["share2"] for t in trials if t.detail.get("share2") is not None]
            rows.append([measure, labels[case], len(trials), p50, p95,
                         f"{done}/{len(trials)} {what}", min(lows) if lows else "?",
                         f"{100 * sum(shares) / len(shares):.0f} %" if shares else "?"])

    def ratios(measure: str) -> str:
        a50, a95 = cells[(measure, "A")]
        b50, b95 = cells[(measure, "B")]
        if a50 is None or b50 is None or a95 is None or b95 is None:
            return "n/a (a case never finished within the timeout)"
        return f"p50 {ratio(a50, b50)}, p95 {ratio(a95, b95)}"

    table = markdown_table(["Measure", "Case", "Trials", "p50", "p95", "Done",
                            "Fewest healthy replicas", "Polls with >= 2 healthy"], rows)
    loss_key, update_key = rows[0][0], rows[2][0]
    ratio_lines = [f"Ratio node loss (Swarm alone / with opskit): {ratios(loss_key)}.",
                   f"Ratio failed update (docker-py defaults / opskit): {ratios(update_key)}."]

    def per_trial(trials: list[Trial]) -> str:
        return ", ".join(fmt_seconds(t.seconds) if t.seconds is not None else "never"
                         for t in trials)

    def seen(trials: list[Trial], key: str) -> str:
        times = [fmt_seconds(t.detail[key]) if key in t.detail else "never" for t in trials]
        return ", ".join(times) or "none"

    activated = sum(bool(t.detail.get("opskit_activated")) for t in loss["B"])
    a_final = sorted({f"{t.detail.get('final')}" for t in update["A"]})
    a_states = [t.detail.get("states") for t in update["A"]]
    b_final = sorted({f"{t.detail.get('final')}/{t.detail.get('engine_state')}"
                      for t in update["B"]})
    notes = [
        *ratio_lines,
        f"Node loss, per trial: A {per_trial(loss['A'])}; B {per_trial(loss['B'])}. After the "
        f"kill, A: Swarm marked the node down at {seen(loss['A'], 'down_at')}, made the "
        f"replacement task at {seen(loss['A'], 'replacement_at')} and let it start (desired "
        f"running) at {seen(loss['A'], 'released_at')}. B: opskit drained the node at "
        f"{seen(loss['B'], 'drained_at')}; Swarm made the replacement at "
        f"{seen(loss['B'], 'replacement_at')} but let it start only at "
        f"{seen(loss['B'], 'released_at')}, with the node marked down at "
        f"{seen(loss['B'], 'down_at')}. opskit activated the node again once back in "
        f"{activated}/{len(loss['B'])} trials.",
        "Healthy replicas, node loss: tasks running on the surviving nodes as the leader "
        "reports them (the killed node's container keeps running meanwhile, unseen), at each "
        "0.25 s poll until the trial ends; failed update: the service's task containers running "
        "healthy, any desired state, sampled every 0.25 s from the update call to its end "
        "(mean share over the trials). With no healthy replica at all during the update: A "
        + ", ".join(f"{t.detail.get('zero', 0.0):.2f} s" for t in update["A"]) + "; B "
        + ", ".join(f"{t.detail.get('zero', 0.0):.2f} s" for t in update["B"])
        + " (samples at 0 x 0.25 s).",
        f"Failed update, per trial: A {per_trial(update['A'])} (final states {a_final}; state "
        f"first seen at, s: {a_states}); B {per_trial(update['B'])} (opskit's RolloutFailed "
        f"state / engine's state: {b_final}).",
        "Ended tasks after the rollback, in Swarm's words: A "
        f"{sorted({e for t in update['A'] for e in t.detail.get('tasks', [])})}; B "
        f"{sorted({e for t in update['B'] for e in t.detail.get('tasks', [])})}; opskit's "
        f"RolloutFailed message: {sorted({str(t.detail.get('message')) for t in update['B']})}.",
        f"Method: a real 3-manager Swarm (dockerd {info.get('Version')}) in network "
        "namespaces on this one machine (`tests/support/swarm.py`), images loaded from the main "
        "engine, no registry; demo web service of 3 replicas with a healthcheck every 0.5 s "
        "(timeout 1 s, 2 retries). Node loss: SIGKILL of the dockerd of a non-leader node "
        "holding a task (its containers live on); time from the kill to 3 tasks desired and "
        "running (healthy) on other nodes, polled from the leader every 0.25 s; then dockerd "
        "restarted on its data root, the node made active again and the service removed, so "
        "each trial starts from 3 spread tasks. Failed update: WEB_PORT=9090 moves the server "
        "off the probed port; time from the update call to `rollback_completed` (A, polled "
        "every 0.25 s) or to `RolloutFailed` with `rolled_back=True` (B, which returns once "
        "the rollback completed and all replicas run). A and B trials alternate. Timeout "
        f"{args.timeout:g} s per trial (`never`). Percentiles are nearest rank: with 3 trials "
        f"p95 is the maximum. Whole run {total / 60:.1f} min.",
    ]
    held = [t for t in loss["B"] if "released_at" in t.detail and "down_at" in t.detail
            and "drained_at" in t.detail]
    if held and all(abs(t.detail["released_at"] - t.detail["down_at"]) <= 1.0 for t in held):
        gain = [t.detail["released_at"] - t.detail["drained_at"] for t in held]
        notes.append(
            "In every B trial the replacement Swarm made when opskit drained the node waited "
            f"{min(gain):.1f} to {max(gain):.1f} s, until Swarm marked the node down: swarmkit's "
            "restart supervisor holds a replacement until the old task is seen stopped or its "
            "node is down (`waitStop`; a 1 min timeout otherwise). The drain saves Swarm's 5 s "
            "restart delay (not applied to drained nodes), not the wait for the heartbeat.")
    if any("complete: finished" in t.detail.get("tasks", []) for t in update["A"] + update["B"]):
        notes.append(
            "The unhealthy tasks end as `complete` (exit 0), not `failed`: Swarm stops an "
            "unhealthy task with SIGTERM, demo-web's shell traps it and exits 0, and the engine "
            "attaches the health cause only to a non-zero exit. Swarm still counts it (\"failure "
            "or early termination\") and rolls back, but no task error names the healthcheck.")
    print(table)
    print("\n".join(notes))
    write_results(RESULTS, "Swarm: node loss and failed update (bench/bench_swarm.py)",
                  info, table, notes, script="bench/bench_swarm.py")


if __name__ == "__main__":
    main()

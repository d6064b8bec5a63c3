"""Benchmark of opskit's stats against its peers, side by side in one run.

    python bench/bench_stats.py              # the whole run (the naive loop alone takes ~100 s)
    python bench/bench_stats.py --quick      # naive loop over 5 containers, extrapolated
    python bench/bench_stats.py --seconds 20 # a shorter CPU-overhead window

It starts a fleet of labelled demo containers (removed at the end, also on Ctrl-C or failure)
and measures:

1. a cold snapshot: ``opskit.observe.stats.stats_snapshot`` vs ``docker stats --no-stream`` vs
   the naive docker-py loop ``[c.stats(stream=False) for c in client.containers.list()]``;
2. a warm snapshot: ``Collector.latest()`` of a running collector vs the CLI;
3. the collector's CPU overhead (process CPU time / wall, % of one core) vs the streaming
   ``docker stats`` CLI sampling the same containers over the same window;
5. a 1,000,000-row stats frame: memory and the 10 s per-container means, vs the same frame with
   ``id`` and ``name`` as plain strings.

The markdown table is printed and written to ``bench/results/stats.md``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import (
    BENCH_LABEL,
    fleet,
    fmt_seconds,
    markdown_table,
    median_time,
    pid_cpu_seconds,
    process_cpu_seconds,
    ratio,
    timed,
    write_results,
)

import opskit
from opskit.observe.collector import Collector
from opskit.observe.stats import stats_snapshot
from opskit.records.statsframe import (
    INT_COLUMNS,
    frame_from_columns,
    memory_footprint,
    resample_means,
)

RESULTS = Path(__file__).resolve().parent / "results" / "stats.md"


def cli_snapshot(names: list[str]) -> int:
    out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{json .}}", *names],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    return len(out.splitlines())


def one_shot_all(api: Any, names: list[str]) -> int:
    """Every container's ``stats(stream=False, one_shot=True)`` at once (no CPU %: see notes)."""
    results: list[Any] = [None] * len(names)

    def one(i: int) -> None:
        results[i] = api.stats(names[i], stream=False, one_shot=True)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(names))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return sum(r is not None for r in results)


def synthetic_frame(rows: int, containers: int = 50) -> Any:
    """A stats frame of ``rows`` rows: ``containers`` containers sampled once a second."""
    import numpy as np

    rng = np.random.default_rng(7)
    n = np.arange(rows)
    cols: dict[str, Any] = {
        "ts": (1_795_000_000 + n // containers) * 1_000_000_000, "key": n % containers,
        "cpu_pct": rng.uniform(0, 100, rows), "mem_pct": rng.uniform(0, 5, rows)}
    for col in INT_COLUMNS:
        cols[col] = rng.integers(0, 1 << 30, rows)
    keys = [(f"{i:064x}", f"web-{i:02d}") for i in range(containers)]
    return frame_from_columns(cols, keys)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--quick", action="store_true",
                        help="time the naive loop over 5 containers and extrapolate")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="CPU-overhead window (default 60)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    ops = opskit.connect()
    ops.demo_images()
    api = ops.engine.api
    rows: list[list[Any]] = []
    notes: list[str] = []
    with fleet(api, args.containers) as started:
        names, n = started.names, len(started.names)
        print(f"fleet of {n} containers up; label {BENCH_LABEL}", flush=True)
        time.sleep(2.0)  # let every container be sampled once by the engine

        # 1. cold snapshot ----------------------------------------------------------------
        stats_snapshot(ops.engine, names)  # imports pandas once, outside the timing
        ours_runs, cli_runs = [], []
        for _ in range(args.repeat):  # interleaved, so both see the same engine conditions
            took, frame = timed(lambda: stats_snapshot(ops.engine, names))
            ours_runs.append(took)
            got = len(frame)
            time.sleep(1.5)
            cli_runs.append(timed(lambda: cli_snapshot(names))[0])
            time.sleep(1.5)
        ours, cli = statistics.median(ours_runs), statistics.median(cli_runs)
        print(f"cold: opskit {ours:.2f}s ({got} rows), CLI {cli:.2f}s; runs "
              f"{[round(x, 2) for x in ours_runs]} vs {[round(x, 2) for x in cli_runs]}",
              flush=True)
        notes.append(f"Cold snapshot runs (s), opskit {[round(x, 2) for x in ours_runs]}, CLI "
                     f"{[round(x, 2) for x in cli_runs]}, interleaved 1.5 s apart.")
        rows.append(["1", f"cold snapshot, {n} containers", "`stats_snapshot`",
                     fmt_seconds(ours), "`docker stats --no-stream`", fmt_seconds(cli),
                     ratio(cli, ours)])
        naive_n = 5 if args.quick else n
        client = ops.engine.client
        naive_time, _ = timed(lambda: [
            c.stats(stream=False)
            for c in client.containers.list(filters={"label": started.label})[:naive_n]])
        naive = naive_time * n / naive_n
        how = (f"measured over {naive_n} containers, x{n / naive_n:g} extrapolated"
               if naive_n < n else "measured")
        print(f"cold: naive loop {naive:.1f}s ({how})", flush=True)
        rows.append(["1", f"cold snapshot, {n} containers", "`stats_snapshot`",
                     fmt_seconds(ours), f"naive docker-py loop ({how})", fmt_seconds(naive),
                     ratio(naive, ours)])
        shot = median_time(lambda: one_shot_all(api, names), 1)
        notes.append("A cold snapshot waits for two engine sampling rounds whatever the client "
                     "does: the first request wakes the engine's idle collector, whose first round "
                     "holds only the few containers subscribed by then; the others get their two "
                     "samples in the next two rounds (~1 s apart plus the collection time), so "
                     "`stats_snapshot` and the CLI both end after ~2.3 s for 50 containers.")
        notes.append(f"`stats(stream=False, one_shot=True)` for all {n} at once took "
                     f"{fmt_seconds(shot)}, but carries no `precpu_stats`: no exact CPU %, so "
                     "`stats_snapshot` does not use it.")

        # 2. warm snapshot, 3. CPU overhead -----------------------------------------------
        with Collector(ops.engine, targets=names) as col:
            deadline = time.monotonic() + 30
            while len(col.latest()) < n and time.monotonic() < deadline:
                time.sleep(0.2)
            seen = len(col.latest())
            for _ in range(5):
                col.latest()  # warm pandas' code paths
            warm = median_time(col.latest, 50)
            print(f"warm: latest() {warm * 1e3:.2f} ms for {seen} containers", flush=True)
            rows.append(["2", f"warm snapshot, {seen} containers", "`Collector.latest()`",
                         fmt_seconds(warm), "`docker stats --no-stream`", fmt_seconds(cli),
                         ratio(cli, warm)])

            peer = subprocess.Popen(["docker", "stats", "--format", "{{json .}}", *names],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(3.0)  # the CLI's start-up is not part of its steady cost
                rows_before = col.store.appended
                cpu0, peer0, wall0 = process_cpu_seconds(), pid_cpu_seconds(peer.pid), \
                    time.monotonic()
                time.sleep(args.seconds)
                cpu1, peer1, wall1 = process_cpu_seconds(), pid_cpu_seconds(peer.pid), \
                    time.monotonic()
                sampled = col.store.appended - rows_before
            finally:
                peer.terminate()  # the streaming CLI may ignore SIGTERM: kill it after 2 s
                try:
                    peer.wait(2)
                except subprocess.TimeoutExpired:
                    peer.kill()
                    peer.wait(10)
        wall = wall1 - wall0
        ours_pct = (cpu1 - cpu0) / wall * 100
        peer_pct = (peer1 - peer0) / wall * 100
        print(f"cpu: collector {ours_pct:.2f}% of a core, CLI {peer_pct:.2f}% ({sampled} rows "
              f"in {wall:.0f}s)", flush=True)
        notes.append(f"CPU window: {sampled:,} rows in {wall:.0f} s, {sampled / wall / seen:.2f} "
                     "samples per container per second: the engine collects every subscribed "
                     "container in turn, then sleeps 1 s, so a round lasts a bit over 1 s.")
        rows.append(["3", f"CPU, {seen} containers at 1 Hz over {wall:.0f} s "
                     f"({sampled:,} rows)", "Collector (process CPU / wall)",
                     f"{ours_pct:.2f} % of a core", "`docker stats` (streaming CLI)",
                     f"{peer_pct:.2f} % of a core", ratio(peer_pct, ours_pct)])

    # 5. a million rows -----------------------------------------------------------------------
    frame = synthetic_frame(1_000_000)
    variants = {"category": frame, "str": frame.astype({"id": str, "name": str}),
                "object": frame.astype({"id": object, "name": object})}
    resample_means(frame, "10s")  # warm-up
    mem = {k: memory_footprint(v) for k, v in variants.items()}
    res = {k: median_time(lambda v=v: resample_means(v, "10s"), args.repeat)
           for k, v in variants.items()}
    print(f"1M rows: {', '.join(f'{k} {mem[k] / 1e6:.0f} MB' for k in mem)}; resample "
          f"{', '.join(f'{k} {res[k]:.2f}s' for k in res)}", flush=True)
    for kind, label in (("str", "pandas `str` (pyarrow)"), ("object", "Python strings")):
        rows.append(["5", "1,000,000-row frame, memory", "id, name as category",
                     f"{mem['category'] / 1e6:.0f} MB", f"id, name as {label}",
                     f"{mem[kind] / 1e6:.0f} MB", ratio(mem[kind], mem["category"])])
    for kind, label in (("str", "pandas `str`"), ("object", "Python strings")):
        rows.append(["5", "1,000,000 rows to 10 s means per container", "`resample_means`",
                     fmt_seconds(res["category"]), f"same, id and name as {label}",
                     fmt_seconds(res[kind]), ratio(res[kind], res["category"])])

    table = markdown_table(["#", "Measure", "opskit", "opskit value", "Peer", "Peer value",
                            "Ratio (peer / opskit)"], rows)
    print("\n" + table)
    write_results(RESULTS, "Stats benchmark", ops.engine.info, table, notes,
                  script="bench/bench_stats.py")
    ops.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Fleet: a stats snapshot of three engines at once, beside the docker CLI and one engine alone.

Three engines on this machine: the main one and two throwaway dockerd in network namespaces of
their own (``tests/support/second_engine.py``), each running ``--containers`` labelled demo
containers. In one run, each measured ``--repeat`` times (median):

1. ``fleet.stats()``: :meth:`opskit.Fleet.stats`, every engine at once;
2. the docker CLI as a person would run it: ``docker --context X stats --no-stream`` for each
   engine, one after the other (contexts made for the run in a DOCKER_CONFIG of its own);
3. the slowest single engine alone: ``opskit.connect(url).stats()`` on each engine, the largest
   median (what the fleet can at best do, since it waits for its slowest member);
4. a black-holed engine: a fourth member behind a relay that swallows every byte; the fleet's
   snapshot with it, against the deadline it was given.

Target: the fleet snapshot within 1.2x of the slowest single engine; the black-holed engine
adds no more than its deadline.

    sudo .venv/bin/python bench/bench_fleet.py [--containers 30] [--repeat 3] [--deadline 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker
from common import fleet, fmt_seconds, markdown_table, ratio, timed, write_results

import opskit
from tests.support.relay import Relay
from tests.support.second_engine import MAIN_URL, ThrowawayEngine

RESULTS = Path(__file__).resolve().parent / "results" / "fleet.md"


def median(fn: Callable[[], object], repeat: int) -> float:
    """Median wall seconds of ``repeat`` calls."""
    return statistics.median(timed(fn)[0] for _ in range(repeat))


def cli_stats(config: str, context: str) -> None:
    done = subprocess.run(["docker", "--context", context, "stats", "--no-stream"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DOCKER_CONFIG": config})
    if done.returncode != 0:
        raise RuntimeError(f"docker --context {context} stats: {done.stderr.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--deadline", type=float, default=3.0)
    args = parser.parse_args()
    tag = os.getpid() % 100000
    with contextlib.ExitStack() as stack:
        engines = {"main": MAIN_URL}
        for i in (1, 2):
            eng = stack.enter_context(ThrowawayEngine(f"okb{i}{tag}"))
            eng.start()
            eng.load_image("opskit/demo-web:latest")
            engines[f"edge{i}"] = eng.url
        for url in engines.values():
            api = stack.enter_context(contextlib.closing(docker.APIClient(base_url=url)))
            stack.enter_context(fleet(api, args.containers))
        config = stack.enter_context(tempfile.TemporaryDirectory(prefix="opskit-bench-ctx-"))
        for name, url in engines.items():
            subprocess.run(["docker", "context", "create", f"bench-{name}", "--docker",
                            f"host={url}"], check=True, capture_output=True,
                           env={**os.environ, "DOCKER_CONFIG": config})

        the_fleet = stack.enter_context(opskit.connect_fleet(engines, deadline=60))
        rows_seen = len(the_fleet.stats())
        ours = median(the_fleet.stats, args.repeat)
        cli = median(lambda: [cli_stats(config, f"bench-{n}") for n in engines], args.repeat)
        singles = {}
        for name, url in engines.items():
            with opskit.connect(url) as ops:
                singles[name] = median(ops.stats, args.repeat)
        slowest_name = max(singles, key=lambda n: singles[n])
        slowest = singles[slowest_name]

        relay = stack.enter_context(Relay(engines["edge2"].removeprefix("unix://")))
        with opskit.connect_fleet({**engines, "far": relay.url},
                                  deadline=args.deadline) as four:
            four.stats()
            relay.blackhole()
            holed = median(four.stats, args.repeat)
            assert four.last is not None
            far_row = four.last.set_index("engine").loc["far"]
            relay.passthrough()

        info = opskit.connect(MAIN_URL).engine.info
    table = markdown_table(
        ["Measure", "Time (median)", "Against", "Ratio"],
        [["`fleet.stats()`, 3 engines at once", fmt_seconds(ours), "", ""],
         ["`docker --context X stats --no-stream`, each engine in turn", fmt_seconds(cli),
          "fleet", ratio(cli, ours)],
         [f"slowest single engine alone (`{slowest_name}`)", fmt_seconds(slowest),
          "fleet / slowest", f"{ours / slowest:.2f}x (target <= 1.2x)"],
         [f"fleet with a 4th engine black-holed, deadline {args.deadline:g} s",
          fmt_seconds(holed), "fleet without it", f"+{fmt_seconds(holed - ours)}"]])
    notes = [
        f"{args.containers} demo containers on each engine (no healthcheck), {rows_seen} rows "
        "in the fleet's snapshot; repeats: " + str(args.repeat) + ".",
        "Single engines: " + ", ".join(f"{n} {fmt_seconds(t)}" for n, t in singles.items())
        + ".",
        f"The black-holed engine's status row: reachable={bool(far_row['reachable'])}, "
        f"'{far_row['error']}'.",
        "The three engines share this machine's 2 CPUs, so the fleet's parallel reads compete "
        "for the same cores; on separate hosts each engine works alone.",
    ]
    print(table)
    print("\n".join(notes))
    write_results(RESULTS, "Fleet stats snapshot (bench/bench_fleet.py)", info, table, notes,
                  script="bench/bench_fleet.py")


if __name__ == "__main__":
    main()

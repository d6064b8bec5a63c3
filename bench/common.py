"""Shared helpers of the benchmarks: timing, CPU time, a fleet of labelled containers, tables.

Nothing here is part of opskit; the scripts in this folder import it with ``bench/`` on the path
(``python bench/bench_stats.py`` puts it there).
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

BENCH_LABEL = "opskit-bench.run"
DEMO_IMAGE = "opskit/demo-web:latest"


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Run ``fn`` once; return (wall seconds, its result)."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def median_time(fn: Callable[[], Any], repeat: int) -> float:
    """Median wall seconds of ``repeat`` runs of ``fn``."""
    return statistics.median(timed(fn)[0] for _ in range(repeat))


def process_cpu_seconds() -> float:
    """User + system CPU seconds of this process so far, all threads included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pid_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another running process (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_results(path: Path, title: str, engine_info: Mapping[str, Any], table: str,
                  notes: Sequence[str], *, script: str, revision: str = "") -> None:
    """Write a results file: the title, when and on what it ran (engine, CPUs, Python, the
    opskit commit, the command line), the table and the notes."""
    cpus = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    command = " ".join([f"python {script}", *sys.argv[1:]])
    at = f"; opskit at {revision}" if revision else ""
    header = (f"# {title}\n\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; engine "
              f"{engine_info.get('Version')} (API {engine_info.get('ApiVersion')}), {cpus} CPUs, "
              f"Python {platform.python_version()}{at}; `{command}`.\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + table + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n")
    print(f"\nwritten to {path}")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_seconds(seconds: float) -> str:
    """``1.94 s``, ``12.3 ms`` or ``85 µs``."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def ratio(peer: float, ours: float) -> str:
    """How many times ``ours`` is faster (or smaller) than ``peer``."""
    return f"{peer / ours:,.1f}x" if ours > 0 else "n/a"


@dataclass(frozen=True)
class Fleet:
    """Containers a benchmark started: their names and the label filter that finds them."""

    names: list[str]
    label: str


@contextlib.contextmanager
def fleet(api: Any, count: int, *, image: str = DEMO_IMAGE, workers: int = 8
          ) -> Iterator[Fleet]:
    """Start ``count`` labelled containers of ``image`` (no healthcheck); remove them on exit.

    They carry ``opskit-bench.run=<token>`` and are removed by that label on exit, on Ctrl-C,
    on SIGTERM (turned into KeyboardInterrupt meanwhile) and after a failure half-way.

    Yields:
        The fleet: names in order, and ``label`` (``opskit-bench.run=<token>``) for filters.
    """
    token = secrets.token_hex(3)
    label = f"{BENCH_LABEL}={token}"
    names = [f"bench-{token}-{i:02d}" for i in range(count)]

    def launch(name: str) -> None:
        cid = api.create_container(image, name=name, labels={BENCH_LABEL: token},
                                   healthcheck={"test": ["NONE"]})["Id"]
        api.start(cid)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(launch, names))
        yield Fleet(names, label)
    finally:
        leftovers = api.containers(all=True, filters={"label": label})
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda c: _remove(api, c["Id"]), leftovers))
        signal.signal(signal.SIGTERM, previous)


def _remove(api: Any, cid: str) -> None:
    with contextlib.suppress(Exception):
        api.remove_container(cid, force=True, v=True)

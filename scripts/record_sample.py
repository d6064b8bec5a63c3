"""Record the sample incident bundle (samples/sample-incident.opsb) on the local engine.

    .venv/bin/python scripts/record_sample.py [--out samples/sample-incident.opsb] [--seconds 90]

A real incident, on the demo images, in a scope of its own (``opskit-sample``) with opskit's
state in a temporary folder: an event journal, a stats collector and a watchdog run while

* ``worker`` (demo-crash, exits with code 3 after 0.5 s) crash-loops until quarantined,
* ``hog`` (demo-hog, memory 16m) is OOM-killed, restarted, OOM-killed again, until quarantined,
* ``flap`` (demo-flap, FLAP_PERIOD=2) flaps its healthcheck: one incident, restarted once,
* ``web`` (demo-web) is crashed with ``ops.chaos("crash", "web")`` and recovered by the watchdog;

then everything is recorded with ``ops.record`` (logs cut to their last 200 lines) and torn
down. Nothing is pulled: the demo images are built offline when missing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCOPE = "opskit-sample"
SERVICES = ("web", "worker", "hog", "flap")
ROOT = Path(__file__).resolve().parent.parent


def sweep(ops: Any) -> None:
    """Remove what an earlier, interrupted run of this script left in its scope."""
    api = ops.engine.api
    for item in api.containers(all=True, filters={"label": [f"io.opskit.scope={SCOPE}"]}):
        with contextlib.suppress(Exception):
            api.remove_container(item["Id"], force=True)


def run(out: Path, seconds: float) -> Path:
    """Stage the incident, record it into ``out``, tear everything down; return ``out``."""
    import opskit
    from opskit.analysis.bundle import record
    from opskit.spec.policy import RecoveryPolicy

    ops = opskit.connect(scope=SCOPE)
    sweep(ops)
    ops.demo_images()
    state = Path(os.environ["OPSKIT_HOME"])
    journal = ops.journal(state / "events.jsonl").start()
    journal.wait_connected(15)
    collector = ops.collector(interval=1.0, targets=list(SERVICES)).start()
    policy = RecoveryPolicy(max_attempts=5, window="5m", backoff_initial=1, backoff_factor=2,
                            backoff_cap=8, jitter=0, verify_timeout=10)
    watchdog = None
    started = time.time() - 2
    try:
        check = {"interval": 1, "timeout": 3, "retries": 2}
        ops.deploy(opskit.ServiceSpec(name="web", image="opskit/demo-web:latest", healthcheck={
            "test": ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"], **check}),
            wait="healthy", timeout=60)
        ops.deploy(opskit.ServiceSpec(name="flap", image="opskit/demo-flap:latest",
                                      env={"FLAP_PERIOD": "2"}, healthcheck={
                                          "test": ["CMD", "test", "-f", "/tmp/ok"],
                                          "interval": 1, "timeout": 3, "retries": 1}),
                   wait="healthy", timeout=60)
        watchdog = ops.watch(list(SERVICES), policy=policy).start()
        deadline = time.monotonic() + seconds
        steps = [(3, lambda: ops.deploy(opskit.ServiceSpec(
                     name="worker", image="opskit/demo-crash:latest",
                     env={"CRASH_AFTER": "0.5", "CRASH_CODE": "3"}), wait=None)),
                 (8, lambda: ops.deploy(opskit.ServiceSpec(
                     name="hog", image="opskit/demo-hog:latest", memory="16m"), wait=None)),
                 (30, lambda: ops.chaos("crash", "web"))]
        begun = time.monotonic()
        while time.monotonic() < deadline:
            while steps and time.monotonic() - begun >= steps[0][0]:
                steps.pop(0)[1]()
            for name in SERVICES:  # keep every probe: the engine holds only the last five
                with contextlib.suppress(opskit.OpsKitError):
                    ops.health(name)
            time.sleep(1.0)
        print("watchdog:", watchdog.status()["quarantined"], "quarantined", file=sys.stderr)
        bundle = record(ops, "sample-incident", services=list(SERVICES), since=started,
                        path=out, collector=collector, watchdog=watchdog, policy=policy,
                        logs_tail=200, max_bytes=8 * 2**20)
    finally:
        if watchdog is not None:
            watchdog.stop()
        collector.stop()
        journal.stop()
        for name in SERVICES:
            with contextlib.suppress(opskit.OpsKitError):
                ops.teardown(name)
        ops.close()
    print(f"{bundle.path}: {bundle.path.stat().st_size} bytes", file=sys.stderr)
    for kind, meta in bundle.manifest["tables"].items():
        print(f"  {kind}: {meta['rows']} rows", file=sys.stderr)
    return bundle.path


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and record; opskit's state lives in a temporary folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "samples" / "sample-incident.opsb")
    parser.add_argument("--seconds", type=float, default=90.0,
                        help="how long the incident runs before it is recorded")
    args = parser.parse_args(argv)
    home = tempfile.mkdtemp(prefix="opskit-sample-")
    os.environ["OPSKIT_HOME"] = home
    sys.path.insert(0, str(ROOT))
    try:
        run(args.out, args.seconds)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

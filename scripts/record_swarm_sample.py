"""Record the sample Swarm incident bundle (samples/sample-swarm.opsb): a local 3-manager swarm
(tests/support/swarm.py), a 3-replica demo-web service, an update whose tasks never become
healthy (WEB_PORT=9090 while the probe asks 8080) rolled back by Swarm, recorded with
``Swarm.record``. Needs root and the demo images on the local engine.

    .venv/bin/python scripts/record_swarm_sample.py [--out samples/sample-swarm.opsb]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import opskit  # noqa: E402
from tests.support.swarm import LocalSwarm  # noqa: E402

HEALTH = {"test": ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"],
          "interval": 0.5, "timeout": 1, "retries": 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "samples" / "sample-swarm.opsb")
    args = parser.parse_args()
    lab = LocalSwarm("oksam", net=254).up(["opskit/demo-web:latest"])
    try:
        swarm = opskit.connect_swarm(lab.urls, scope="sample")
        good = opskit.ServiceSpec(name="web", image="opskit/demo-web:latest",
                                  healthcheck=HEALTH, replicas=3)
        swarm.deploy(good)
        try:
            swarm.deploy(opskit.ServiceSpec(name="web", image="opskit/demo-web:latest",
                                            healthcheck=HEALTH, replicas=3,
                                            env={"WEB_PORT": "9090"}))
        except opskit.errors.RolloutFailed as exc:
            print(f"as intended: {exc.message}")
        bundle = swarm.record("sample-swarm", path=args.out, since="5m")
        print(f"wrote {bundle.path}: {len(bundle.swarm_tasks)} tasks, "
              f"{len(bundle.swarm_events)} swarm events")
    finally:
        lab.close()


if __name__ == "__main__":
    main()

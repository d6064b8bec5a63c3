"""Open an incident bundle as a reader on another machine would: in a fresh interpreter, with
no Docker engine reachable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any


def open_elsewhere(path: Path) -> dict[str, Any]:
    """Open ``path`` in a new process (DOCKER_HOST pointing at nothing) and return its table
    sizes, the timeline's trace count, the report, and whether docker-py got imported."""
    code = textwrap.dedent(f"""
        import json, sys
        import opskit.analysis.bundle
        b = opskit.analysis.bundle.open_bundle({str(path)!r})
        figure = b.timeline()
        out = {{"rows": {{k: len(getattr(b, k)) for k in opskit.analysis.bundle.TABLES}},
               "traces": len(figure.data), "report": b.report(),
               "html": b.report(format="html")[:15], "replay": len(b.replay()),
               "docker": "docker" in sys.modules}}
        print(json.dumps(out))
    """)
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent.sock")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result

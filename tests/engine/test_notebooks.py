"""Each notebook is a runbook that runs headless on the real engine, with ``opskit
run-runbook`` and with plain papermill, to exit 0, in this session's scope, removing what it
made (nbval runs them all separately). The notebooks as artefacts (thin, parameterised, stored
without outputs) are checked in ../unit/test_notebooks.py."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import ROOT
from tests.support.session import unique

pytestmark = pytest.mark.engine

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
# what an executed copy must print: the runbook's point, not just the absence of errors
EXPECTED = {"01-deploy-runbook": "rolled back: True", "05-recovery-runbook": "recovered: True",
            "08-fleet": "recovered: True"}
NO_ENGINE = {"06-incident-analysis"}  # runs with DOCKER_HOST pointing at nothing
# plain papermill keeps the widget state, and each plotly figure widget's holds plotly.js;
# run-runbook does not store it
MAX_BYTES = {("07-dashboard", "papermill"): 20_000_000}


def _parameter_names(path: Path) -> set[str]:
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    tree = ast.parse("".join(cell["source"]))
    return {t.id for node in tree.body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)}


def _texts(executed: dict[str, Any]) -> list[str]:
    out = []
    for cell in executed["cells"]:
        for o in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            for text in (o.get("text"), o.get("data", {}).get("text/plain")):
                if text is not None:
                    out.append(text if isinstance(text, str) else "".join(text))
    return out


@pytest.mark.parametrize("way", ["run-runbook", "papermill"])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_headless(path: Path, way: str, ops: Any, demo: list[str],
                                tmp_path: Path) -> None:
    """``opskit run-runbook NB -p ...`` and ``papermill NB OUT -p ...`` both exit 0 and the
    executed copy holds no error; the notebook acts in this session's scope, on services named
    for this run, and removes what it made."""
    names = _parameter_names(path)
    service = unique(f"nb{path.stem[:2]}-{'rr' if way == 'run-runbook' else 'pm'}")
    params = {"scope": ops.engine.scope, "service": service, "network": f"{service}-net"}
    args = [x for name, value in params.items() if name in names for x in ("-p", name, value)]
    out = tmp_path / "executed.ipynb"
    if way == "run-runbook":
        cmd = [sys.executable, "-m", "opskit.cli", "run-runbook", str(path), *args,
               "-o", str(out)]
    else:  # relative paths in parameters are relative to notebooks/, as in Jupyter
        cmd = [sys.executable, "-m", "papermill", str(path), str(out), *args,
               "--cwd", str(path.parent), "--no-progress-bar"]
    env = dict(os.environ)
    if path.stem in NO_ENGINE:
        env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    executed = json.loads(out.read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert not errors, [f"{o['ename']}: {o['evalue']}" for o in errors]
    injected = [c for c in executed["cells"]
                if "injected-parameters" in c["metadata"].get("tags", [])]
    assert bool(injected) == bool(args)
    assert all(value in "".join(injected[0]["source"])
               for name, value in params.items() if name in names)
    if path.stem in EXPECTED:
        assert any(EXPECTED[path.stem] in t for t in _texts(executed)), _texts(executed)
    assert out.stat().st_size < MAX_BYTES.get((path.stem, way), 2_000_000)
    api = ops.engine.api
    left = [c["Names"] for c in api.containers(all=True) if any(service in n for n in c["Names"])]
    left += [n["Name"] for n in api.networks() if service in n["Name"]]
    assert not left, f"the notebook's teardown left {left}"


def test_incident_analysis_reads_a_swarm_bundle(tmp_path: Path) -> None:
    """Notebook 06 on the sample Swarm incident: no engine, and the swarm's own frames shown
    (the update Swarm rolled back)."""
    path = ROOT / "notebooks" / "06-incident-analysis.ipynb"
    out = tmp_path / "executed.ipynb"
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock")
    proc = subprocess.run(
        [sys.executable, "-m", "papermill", str(path), str(out), "-p", "bundle_path",
         str(ROOT / "samples" / "sample-swarm.opsb"), "--cwd", str(path.parent),
         "--no-progress-bar"], capture_output=True, text=True, timeout=240, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    texts = "\n".join(_texts(json.loads(out.read_text())))
    assert "rollback_completed" in texts and "not a swarm bundle" not in texts

"""Binder: a fresh environment from binder/requirements.txt plus the package opens the sample
incident in notebook 06 with no Docker engine (DOCKER_HOST points at nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT


@pytest.mark.slow
def test_incident_notebook_runs_under_the_binder_requirements(tmp_path: Path) -> None:
    venv = tmp_path / "binder-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
           "--disable-pip-version-check"]
    # the Binder image's own packages, then the test runner (not part of binder/)
    subprocess.run([*pip, "-r", str(ROOT / "binder" / "requirements.txt"), "nbval", "pytest"],
                   check=True, timeout=900)
    subprocess.run([*pip, "--no-deps", str(ROOT)], check=True,
                   timeout=300)
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock",
           "OPSKIT_HOME": str(tmp_path / "home")}
    env.pop("PYTHONPATH", None)
    run = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-c", os.devnull, "-q",
         "-p", "no:cacheprovider", "--rootdir", str(ROOT), "--nbval-lax",
         "--nbval-current-env", str(ROOT / "notebooks" / "06-incident-analysis.ipynb")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout

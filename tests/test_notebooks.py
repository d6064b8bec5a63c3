"""The notebooks as artefacts: thin, parameterised, stored without outputs; and 05 as a
papermill runbook whose executed copy reports a recovery (nbval runs them all separately)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]-*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_thin_and_parameterised(path: Path) -> None:
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", []), "first code cell: parameters"
    for cell in code:
        source = "".join(cell["source"])
        assert not any(line.lstrip().startswith(("def ", "class ")) for line in
                       source.splitlines()), f"logic belongs in the library: {source[:60]}"
        assert len(source.splitlines()) <= 8, f"a thin cell: {source[:60]}"
        assert not cell.get("outputs"), "stored without outputs"
    assert "widgets" not in nb["metadata"], "no stored widget state"
    assert sum(c["cell_type"] == "markdown" for c in nb["cells"]) >= 3, "markdown tells the story"


@pytest.mark.engine
def test_recovery_runbook_runs_headless_and_records_a_recovery(ops, demo, tmp_path) -> None:
    out = tmp_path / "run.ipynb"
    proc = subprocess.run(
        [sys.executable, "-m", "opskit.cli", "run-runbook", "notebooks/05-recovery-runbook.ipynb",
         "-p", "service", "pm-recover", "-p", "scope", ops.engine.scope, "-o", str(out)],
        capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    executed = json.loads(out.read_text())
    texts = [o.get("text", "") if isinstance(o.get("text"), str) else "".join(o.get("text", []))
             for c in executed["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert any("recovered: True" in t for t in texts), texts
    injected = [c for c in executed["cells"] if "injected-parameters" in
                c["metadata"].get("tags", [])]
    assert injected and "pm-recover" in "".join(injected[0]["source"])
    assert out.stat().st_size < 2_000_000

"""The notebooks as artefacts: thin (no ``def`` or ``class``, a few lines a cell),
parameterised by a first ``parameters`` cell, stored without outputs or widget state, with
markdown telling the story.

Running each one headless on the real engine is in ../engine/test_notebooks.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.paths import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))


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
        assert "raises-exception" not in cell["metadata"].get("tags", []), \
            "an expected error is caught and printed (papermill stops at any error)"
    assert "widgets" not in nb["metadata"], "no stored widget state"
    assert sum(c["cell_type"] == "markdown" for c in nb["cells"]) >= 3, "markdown tells the story"

"""Where the tests find the repository's files."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
PAYLOADS = TESTS / "payloads"  # engine answers recorded once (see payloads/manifest.json)
SAMPLE = ROOT / "samples" / "sample-incident.opsb"
NOTEBOOKS = ROOT / "notebooks"

"""Caps on what comes out of containers (issue 10, "Files from outside"): the defaults are
the documented ones, and what record() writes opens under the default open limit.

The caps at work on the real engine are in ../engine/test_limits.py.
"""

from __future__ import annotations

from opskit.act.execute import DEFAULT_MAX_OUTPUT
from opskit.act.transfer import DEFAULT_MAX_COPY_BYTES
from opskit.analysis.bundle import DEFAULT_MAX_BYTES, DEFAULT_OPEN_BYTES
from opskit.observe.logs import DEFAULT_TAIL


def test_the_defaults_are_the_documented_ones() -> None:
    assert (DEFAULT_TAIL, DEFAULT_MAX_OUTPUT, DEFAULT_MAX_COPY_BYTES) == (10_000, 2**20, 2**30)
    assert DEFAULT_OPEN_BYTES == 256 * 2**20 > 2 * DEFAULT_MAX_BYTES, "what record() writes opens"

"""What every test shares: this session's id and label, unique names, and polling."""

from __future__ import annotations

import secrets
import time
from typing import Any

SESSION = secrets.token_hex(4)
TEST_LABEL = "opskit-test.session"


def unique(prefix: str) -> str:
    """A name unique to this test session."""
    return f"{prefix}-{SESSION}-{secrets.token_hex(2)}"


def until(check: Any, timeout: float = 20.0, what: str = "") -> Any:
    """Poll ``check()`` every 0.1 s until it returns something true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or check}")

"""Parsing of the small units people type: sizes (``"64m"``), durations (``"5m"``), times.

Pure functions; each raises ``ValueError`` with the text it could not read, and callers that
know the field wrap it into :class:`~opskit.base.errors.InvalidSpec`.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import InvalidSpec

__all__ = ["parse_bytes", "parse_duration", "parse_time"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_FACTORS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|us|ns|s|m|h|d)", re.IGNORECASE)
_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_bytes(value: int | str) -> int:
    """Read a size as ``docker run --memory`` does: ``64m``, ``1g``, ``512k``, or bytes.

    Units are binary (``1m`` is 1,048,576 bytes), as in the docker CLI.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a size like '64m', '1g' or a number of bytes")
    number, unit, _ = match.groups()
    return int(float(number) * _FACTORS[unit.lower()])


def parse_duration(value: float | int | str | timedelta) -> float:
    """Read a duration in seconds: ``1.5``, ``"30s"``, ``"5m"``, ``"1h30m"``, ``"250ms"``."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if text[pos:match.start()].strip():
            break
        total += float(match.group(1)) * _SECONDS[match.group(2).lower()]
        pos = match.end()
    if pos == 0 or text[pos:].strip():
        raise ValueError(f"{value!r} is not a duration like '30s', '5m', '1h30m' or seconds")
    return total


def checked_duration(field: str, value: Any, *, least: float = 0.0) -> float:
    """:func:`parse_duration` for a field of a spec or policy: finite and at least ``least``.

    Raises:
        InvalidSpec: naming ``field``, when the value is not such a duration.
    """
    try:
        seconds = parse_duration(value)
    except (TypeError, ValueError) as exc:
        raise InvalidSpec(field, str(exc), allowed="seconds or '30s', '5m'",
                          value=value) from None
    if not math.isfinite(seconds) or seconds < least:
        raise InvalidSpec(field, "is not finite" if not math.isfinite(seconds)
                          else f"{seconds:g}s is too small",
                          allowed=f"a duration of at least {least:g}s", value=value)
    return seconds


def parse_time(value: datetime | str | float | int | None, *,
               now: datetime | None = None) -> datetime | None:
    """Read a point in time as UTC: a datetime, an ISO string, a Unix time, or an age (``"10m"``).

    An age means that long before ``now``. Naive datetimes are taken as UTC.
    """
    if value is None:
        return None
    now = now or datetime.now(UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    text = str(value).strip()
    try:  # a bare number is a Unix time, as in ``docker logs --since``
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except ValueError:
        pass
    try:
        return now - timedelta(seconds=parse_duration(text))
    except ValueError:
        raise ValueError(
            f"{value!r} is not a time: give a datetime, an ISO 8601 string, a Unix time or an "
            "age such as '10m'") from None

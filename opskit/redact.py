"""Masking secrets in what opskit shows or stores: env, command lines, labels, probe output, logs.

Names stay and values go, so an analysis still sees *which* variable was set. Matching is by
name (case-insensitive: ``password``, ``token``, ``secret``, ``api_key``, ``credential``, ...)
and by value (credentials in URLs, bearer tokens, well-known token shapes). Every function can
count what it masked into a :class:`RedactionReport`, which lists names and places, never values.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["MASK", "RedactionReport", "is_secret_name", "redact_argv", "redact_env",
           "redact_mapping", "redact_text"]

MASK = "***"

_SECRET_NAME = re.compile(
    r"(pass(word|wd|phrase)?|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|"
    r"credential|auth|session[_-]?id|cookie|signature|dsn|database[_-]?url|conn(ection)?[_-]?str)",
    re.IGNORECASE)
_URL_CREDS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):"
                        r"(?P<secret>[^@/\s]+)@")
_KV = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)(?P<sep>\s*[=:]\s*)(?P<q>[\"']?)"
                 r"(?P<value>[^\s\"'&,;]+)")
_BEARER = re.compile(r"(?P<pre>\b(?:bearer|basic|token)\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})",
                     re.IGNORECASE)
_TOKEN_SHAPES = re.compile(
    r"\b(gh[pousr]_[A-Za-z0-9]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|"
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}|sk-[A-Za-z0-9]{20,}|"
    r"glpat-[A-Za-z0-9_-]{20,})\b")
_FLAG = re.compile(r"^(?P<flag>--?[A-Za-z0-9_.-]+)(?:=(?P<value>.*))?$")
_SHORT_SECRET_FLAGS = {"-p"}


@dataclass
class RedactionReport:
    """What was masked, per table: counts by name (``env:PASSWORD``), never values."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, table: str, name: str, n: int = 1) -> None:
        """Count ``n`` masked values of ``name`` in ``table``."""
        self.counts.setdefault(table, Counter())[name] += n

    def merge(self, other: RedactionReport) -> None:
        """Add another report's counts to this one."""
        for table, counter in other.counts.items():
            self.counts.setdefault(table, Counter()).update(counter)

    def total(self) -> int:
        """How many values were masked in all."""
        return sum(sum(c.values()) for c in self.counts.values())

    def to_dict(self) -> dict[str, dict[str, int]]:
        """A plain mapping for a manifest: ``{table: {name: count}}``."""
        return {t: dict(sorted(c.items())) for t, c in sorted(self.counts.items())}


def is_secret_name(name: str) -> bool:
    """True for a variable, flag or label name that usually holds a secret."""
    return bool(_SECRET_NAME.search(name))


def redact_text(text: str, *, report: RedactionReport | None = None,
                table: str = "text") -> str:
    """Mask secrets in free text: URL credentials, ``name=value`` pairs under secret names,
    bearer tokens and well-known token shapes."""
    if not text:
        return text

    def url(m: re.Match[str]) -> str:
        if report is not None:
            report.add(table, "url-credentials")
        return f"{m.group('scheme')}{m.group('user')}:{MASK}@"

    def kv(m: re.Match[str]) -> str:
        if not is_secret_name(m.group("key")) or m.group("value") == MASK:
            return m.group(0)
        if report is not None:
            report.add(table, m.group("key"))
        return f"{m.group('key')}{m.group('sep')}{m.group('q')}{MASK}"

    def bearer(m: re.Match[str]) -> str:
        if report is not None:
            report.add(table, "bearer-token")
        return f"{m.group('pre')}{MASK}"

    def shape(m: re.Match[str]) -> str:
        if report is not None:
            report.add(table, "token-pattern")
        return MASK

    text = _URL_CREDS.sub(url, text)
    text = _KV.sub(kv, text)
    text = _BEARER.sub(bearer, text)
    return _TOKEN_SHAPES.sub(shape, text)


def redact_env(env: Iterable[str], *, report: RedactionReport | None = None,
               table: str = "env") -> list[str]:
    """Mask every value of ``NAME=value`` entries (all env values are masked; names stay)."""
    out = []
    for item in env:
        name, sep, value = item.partition("=")
        if sep and value:
            if report is not None:
                report.add(table, name)
            out.append(f"{name}={MASK}")
        else:
            out.append(item)
    return out


def redact_mapping(values: Mapping[str, str], *, report: RedactionReport | None = None,
                   table: str = "labels") -> dict[str, str]:
    """Mask values under secret-looking keys, and secrets inside the other values."""
    out = {}
    for key, value in values.items():
        if is_secret_name(key) and value:
            if report is not None:
                report.add(table, key)
            out[key] = MASK
        else:
            out[key] = redact_text(str(value), report=report, table=table)
    return out


def redact_argv(argv: Iterable[str], *, report: RedactionReport | None = None,
                table: str = "command") -> list[str]:
    """Mask secret command-line arguments: ``--password=x``, ``--token x``, ``-p x``, and
    secrets inside any argument (URLs with credentials, ``KEY=value``)."""
    out: list[str] = []
    mask_next = ""
    for arg in argv:
        if mask_next:
            if report is not None:
                report.add(table, mask_next)
            out.append(MASK)
            mask_next = ""
            continue
        m = _FLAG.match(arg)
        if m and (is_secret_name(m.group("flag")) or m.group("flag") in _SHORT_SECRET_FLAGS):
            if m.group("value") is None:
                mask_next = m.group("flag")
                out.append(arg)
            else:
                if report is not None:
                    report.add(table, m.group("flag"))
                out.append(f"{m.group('flag')}={MASK}")
            continue
        out.append(redact_text(arg, report=report, table=table))
    return out

"""Masking secrets in what opskit shows or stores: env, command lines, labels, probe output, logs.

Names stay and values go, so an analysis still sees *which* variable was set. Matching is by
name (case-insensitive: ``password``, ``token``, ``secret``, ``api_key``, ``credential``, ...)
and by value (credentials in URLs, bearer tokens, well-known token shapes). Every function can
count what it masked into a :class:`RedactionReport`, which lists names and places, never values.

Free text is searched by a fixed list of rules, in this order; a stretch of text one rule has
claimed is not looked at again by the later ones, so ``Authorization: Bearer x`` becomes
``Authorization: Bearer ***`` (not ``Authorization: *** x``):

1. HTTP headers that carry credentials: ``Authorization:``, ``X-Api-Key:``, ``Cookie:``, ...
   (the value up to the end of the line or a quote; the auth scheme stays visible).
2. ``Bearer``/``Basic``/``Token`` followed by a token.
3. ``name=value`` and ``name: value`` under a secret name, JSON and Python-repr shapes included
   (``"password": "x"``); a quoted value is masked up to its matching quote.
4. A secret flag followed by its value: ``--password x``.
5. Credentials in URLs: ``scheme://user:***@host``.
6. Well-known token shapes (GitHub, Slack, AWS, JWT, OpenAI, GitLab).
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

__all__ = ["MASK", "RedactionReport", "is_secret_name", "redact_argv", "redact_env",
           "redact_mapping", "redact_text"]

MASK = "***"

_SECRET_NAME = re.compile(
    r"(pass(word|wd|phrase)?|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|"
    r"credential|auth|session[_-]?id|cookie|signature|dsn|database[_-]?url|conn(ection)?[_-]?str)",
    re.IGNORECASE)
# A name starts where the previous character cannot be part of it; '/' is excluded too so the
# user part of ``https://token:x@host`` is left to the URL rule.
_NAME_START = r"(?<![A-Za-z0-9_.\-/])"
_HEADER = re.compile(
    r"(?<![A-Za-z0-9_-])(?P<name>(?:proxy-)?authorization|x-api-key|api-key|apikey|"
    r"x-auth-token|x-access-token|x-amz-security-token|private-token|set-cookie|cookie)"
    r"[\"']?[ \t]*:[ \t]*[\"']?(?P<value>[^\r\n\"']*)", re.IGNORECASE)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*[ \t]+(?=\S)")
_BEARER = re.compile(r"(?<![\w-])(?:bearer|basic|token)[ \t]+"
                     r"(?P<value>[A-Za-z0-9._~+/=-]{8,}|\*\*\*(?![\w*]))", re.IGNORECASE)
_KV = re.compile(_NAME_START + r"(?P<key>[A-Za-z0-9_.\-]++)[\"']?[ \t]*[=:][ \t]*")
_FLAG_SPACE = re.compile(_NAME_START + r"(?P<flag>--?[A-Za-z][A-Za-z0-9_.\-]*+)[ \t]+(?=[^\s-])")
# A value: double- or single-quoted (backslash escapes allowed, as in JSON and Python reprs;
# a shell's literal backslash only makes the masked stretch longer), a URL, or a bare word.
_VALUE = re.compile(r"\"(?P<dq>(?:[^\"\\\n]|\\.)*)\"|'(?P<sq>(?:[^'\\\n]|\\.)*)'|[\"']?(?P<bare>"
                    r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"']+|[^\s\"'&,;]+)")
_URL_CREDS = re.compile(r"(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]*+://[^:/@\s\"']*+:"
                        r"(?P<secret>[^/\s\"']+)@")
_TOKEN_SHAPES = re.compile(
    r"\b(gh[pousr]_[A-Za-z0-9]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|"
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}|sk-[A-Za-z0-9]{20,}|"
    r"glpat-[A-Za-z0-9_-]{20,})\b")
_FLAG = re.compile(r"^(?P<flag>--?[A-Za-z0-9_.-]+)(?:=(?P<value>.*))?$", re.DOTALL)
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


@dataclass(frozen=True)
class _Hit:
    """A stretch ``[start, end)`` one rule claimed, and the part of it to mask.

    ``name`` is what the report counts; empty for a value that is already masked (claimed, so
    no later rule touches it, but neither changed nor counted).
    """

    start: int
    end: int
    mask_start: int
    mask_end: int
    name: str


def _hit(start: int, mask_start: int, mask_end: int, name: str) -> _Hit:
    """A hit whose claimed stretch ends with the masked value."""
    empty = mask_end <= mask_start
    return _Hit(start, mask_end, mask_start, mask_end, "" if empty else name)


def _value_hit(text: str, start: int, pos: int, name: str) -> _Hit | None:
    """The value starting at ``pos`` (quoted, URL or bare) as a hit for ``name``."""
    m = _VALUE.match(text, pos)
    if not m:
        return None
    group = next(g for g in ("dq", "sq", "bare") if m.group(g) is not None)
    value = m.group(group)
    if not value:
        return None
    if value == MASK:
        return _Hit(start, m.end(), 0, 0, "")
    return _Hit(start, m.end(), m.start(group), m.end(group), name)


def _headers(text: str) -> Iterator[_Hit]:
    for m in _HEADER.finditer(text):
        value = m.group("value").rstrip()
        begin = m.start("value")
        if m.group("name").lower().endswith("authorization"):
            scheme = _SCHEME.match(value)
            if scheme:
                begin, value = begin + scheme.end(), value[scheme.end():]
        if value == MASK:
            yield _Hit(m.start(), begin + len(value), 0, 0, "")
        elif value:
            yield _hit(m.start(), begin, begin + len(value), m.group("name"))


def _bearers(text: str) -> Iterator[_Hit]:
    for m in _BEARER.finditer(text):
        if m.group("value") == MASK:
            yield _Hit(m.start(), m.end(), 0, 0, "")
            continue
        yield _hit(m.start(), m.start("value"), m.end("value"), "bearer-token")


def _named_values(pattern: re.Pattern[str], group: str) -> Callable[[str], Iterator[_Hit]]:
    """A rule: ``pattern`` finds a name (and separator), the value follows it.

    Scanning resumes after a value it masked, not inside it, so the time stays linear.
    """

    def rule(text: str) -> Iterator[_Hit]:
        pos = 0
        while m := pattern.search(text, pos):
            pos = m.end()
            if is_secret_name(m.group(group)):
                hit = _value_hit(text, m.start(), m.end(), m.group(group))
                if hit is not None:
                    pos = hit.end
                    yield hit

    return rule


def _url_credentials(text: str) -> Iterator[_Hit]:
    for m in _URL_CREDS.finditer(text):
        if m.group("secret") != MASK:
            yield _hit(m.start(), m.start("secret"), m.end("secret"), "url-credentials")


def _token_shapes(text: str) -> Iterator[_Hit]:
    for m in _TOKEN_SHAPES.finditer(text):
        yield _hit(m.start(), m.start(), m.end(), "token-pattern")


_RULES: tuple[Callable[[str], Iterator[_Hit]], ...] = (
    _headers, _bearers, _named_values(_KV, "key"), _named_values(_FLAG_SPACE, "flag"),
    _url_credentials, _token_shapes)


def _find(text: str) -> list[_Hit]:
    """Every secret in ``text``, rule by rule; no two hits overlap. Sorted by position."""
    hits: list[_Hit] = []
    starts: list[int] = []
    for rule in _RULES:
        for hit in rule(text):
            i = bisect.bisect_right(starts, hit.start)
            if (i and hits[i - 1].end > hit.start) or (i < len(hits) and hits[i].start < hit.end):
                continue  # part of what an earlier rule (or match) claimed
            hits.insert(i, hit)
            starts.insert(i, hit.start)
    return hits


def redact_text(text: str, *, report: RedactionReport | None = None,
                table: str = "text") -> str:
    """Mask secrets in free text (see the module docstring for the rules); names stay.

    Running it on its own output changes nothing and counts nothing.
    """
    if not text:
        return text
    parts: list[str] = []
    pos = 0
    for hit in _find(text):
        if not hit.name:
            continue
        parts += [text[pos:hit.mask_start], MASK]
        pos = hit.mask_end
        if report is not None:
            report.add(table, hit.name)
    if not parts:
        return text
    parts.append(text[pos:])
    return "".join(parts)


def redact_env(env: Iterable[str], *, report: RedactionReport | None = None,
               table: str = "env") -> list[str]:
    """Mask every value of ``NAME=value`` entries (all env values are masked; names stay)."""
    out = []
    for item in env:
        name, sep, value = item.partition("=")
        if sep and value and value != MASK:
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
        if is_secret_name(key) and value and value != MASK:
            if report is not None:
                report.add(table, key)
            out[key] = MASK
        else:
            out[key] = redact_text(str(value), report=report, table=table)
    return out


def redact_argv(argv: Iterable[str], *, report: RedactionReport | None = None,
                table: str = "command") -> list[str]:
    """Mask secret command-line arguments: ``--password=x``, ``--token x``, ``-p x``, and
    secrets inside any argument (a ``sh -c`` script, URLs with credentials, ``KEY=value``)."""
    out: list[str] = []
    mask_next = ""
    for arg in argv:
        if mask_next:
            if arg != MASK and report is not None:
                report.add(table, mask_next)
            out.append(MASK)
            mask_next = ""
            continue
        m = _FLAG.match(arg)
        if m and (is_secret_name(m.group("flag")) or m.group("flag") in _SHORT_SECRET_FLAGS):
            value = m.group("value")
            if value is None:
                mask_next = m.group("flag")
                out.append(arg)
            elif value in ("", MASK):
                out.append(arg)
            else:
                if report is not None:
                    report.add(table, m.group("flag"))
                out.append(f"{m.group('flag')}={MASK}")
            continue
        out.append(redact_text(arg, report=report, table=table))
    return out

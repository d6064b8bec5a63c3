"""Masking secrets in what opskit shows or stores: env, command lines, labels, probe output, logs.

Names stay and values go, so an analysis still sees *which* variable was set. Matching is by
name and by value. Every function can count what it masked into a :class:`RedactionReport`,
which lists names and places, never values.

**Secret names** (:func:`is_secret_name`, case-insensitive): any name that contains
``password``, ``passwd``, ``pwd``, ``secret``, ``token``, ``auth``, ``credential``, ``cookie``,
``signature``, ``dsn``, ... or a glued ``apikey``/``accesskey``/``signingkey``-style word; and
any name whose *last word* is ``key``, ``keys`` or ``sig`` (words split at ``_ - . / :`` and
at camelCase: ``ENCRYPTION_KEY``, ``com.example.key``, ``apiKey``, ``SIGNING_KEY_B64``, a SAS
``sig``). ``KEYBOARD_LAYOUT``, ``MONKEY``, ``KEY_PATH`` and ``design`` are not secret names.
``PUBLIC_KEY``, ``primary_key`` and a bare ``key=...`` are masked too: a rule without exceptions
is easier to trust than a list of them, and a masked value that was harmless costs little.

**Short flags** are secrets only for the tools that take a password with them; ``-p`` is a port
for ``httpd``, ``psql``, ``ssh`` and ``docker run``, so it is never masked on its own:

- mysql-family tools (``mysql``, ``mysqldump``, ``mysqladmin``, ``mariadb``, ...): the attached
  ``-pSECRET`` only, numeric or not (their port is ``-P``); in ``mysql -p db`` the word after a
  bare ``-p`` is the database, and mysql prompts for the password.
- ``curl -u``/``--user``/``-U``/``--proxy-user user:SECRET``: the part after the first colon.
- ``redis-cli`` (and valkey, keydb) ``-a SECRET``; ``ldapsearch`` and friends ``-w SECRET``;
  ``sshpass``, the mongo tools and ``docker``/``podman login`` ``-p SECRET`` (or ``-pSECRET``).

Free text is searched by a fixed list of rules, in this order; a stretch of text one rule has
claimed is not looked at again by the later ones, so ``Authorization: Bearer x`` becomes
``Authorization: Bearer ***`` (not ``Authorization: *** x``):

1. PEM blocks: the body of a ``-----BEGIN ... PRIVATE KEY-----`` block up to its ``END`` line
   (to the end of the text when the ``END`` is missing); other blocks (certificates) whose
   body is only base64 are claimed unchanged, so rule 11 leaves them readable.
2. A YAML secret whose value starts on the next line (``password:``, ``token: |``): the more
   indented lines that follow, unless they are a nested mapping (whose keys rule 6 judges).
3. HTTP headers that carry credentials: ``Authorization:``, ``X-Api-Key:``, ``Cookie:``, ...
   (the value up to the end of the line or a quote; the auth scheme stays visible).
4. ``Bearer``/``Basic``/``Token`` followed by a token.
5. The short flags of the tools above, within one command (up to ``;``, ``|``, ``&``, a newline).
6. ``name=value`` and ``name: value`` under a secret name, JSON and Python-repr shapes included
   (``"password": "x"``, ``?sv=...&sig=x``); a quoted value is masked up to its matching quote.
7. A secret flag followed by its value: ``--password x``.
8. Credentials in URLs: ``scheme://user:***@host``.
9. Webhook URLs whose path is the credential (Slack): everything after ``/services/``.
10. Well-known token shapes: GitHub, Slack, AWS, JWT, OpenAI, GitLab, Stripe secret and
    restricted keys (``sk_live_``, ``rk_test_``), Google API keys (``AIza`` + 35).
11. A lone line of 60-76 base64 characters mixing upper case, lower case and digits: a PEM
    body line met without its ``BEGIN`` line, when text is redacted line by line. Hex digests
    and IDs never match. :class:`LineRedactor` does better for a stream of lines: it carries
    rules 1 and 2 across lines.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

__all__ = ["MASK", "LineRedactor", "RedactionReport", "is_secret_name", "redact_argv",
           "redact_env", "redact_lines", "redact_mapping", "redact_text"]

MASK = "***"

_SECRET_NAME = re.compile(
    r"(pass(word|wd|phrase)?|pwd|secret|token|auth|credential|cookie|signature|dsn|"
    r"(api|access|private|signing|encryption|master|license|client|hmac)[_-]?key|"
    r"session[_-]?id|database[_-]?url|conn(ection)?[_-]?str)", re.IGNORECASE)
# The last word of a name: ``key``/``keys``/``sig``, maybe with a number or an encoding after.
_LAST_WORD = re.compile(r"(?:(?<![A-Za-z0-9])|(?<=[a-z0-9])(?=[KS]))(?i:keys?|sig)"
                        r"(?i:[_.-]?(?:\d+|b64|base64|pem|hex))?$")
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
_WEBHOOK = re.compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/"
                      r"(?P<secret>[A-Za-z0-9_/-]+)")
_TOKEN_SHAPES = re.compile(
    r"\b(gh[pousr]_[A-Za-z0-9]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|"
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}|sk-[A-Za-z0-9]{20,}|"
    r"glpat-[A-Za-z0-9_-]{20,})\b|"
    r"(?<![\w-])(?:[sr]k_(?:live|test)_[A-Za-z0-9]{10,}|AIza[A-Za-z0-9_-]{35})(?![\w-])")
_PEM_BEGIN = re.compile(r"-----BEGIN (?P<kind>(?:[A-Z0-9]{1,16} ){0,3}[A-Z0-9]{1,16})-----")
_PEM_EDGE = re.compile(r"(?:\s|\\[rn])*+")  # whitespace, or a \n escape in JSON or a repr
_PEM_BODY = re.compile(r"(?:[A-Za-z0-9+/]++(?:={1,2}(?=\s|\\[rn]|\Z))?|\s|\\[rn])*+")  # base64
_BASE64_LINE = re.compile(r"(?<!\S)(?P<b>[A-Za-z0-9+/]{60,76}={0,2})[ \t]*\r?$", re.MULTILINE)
_YAML_KEY = re.compile(r"^(?P<indent>[ \t]*+(?:- )?)[\"']?(?P<key>[A-Za-z0-9_.\-]++)[\"']?"
                       r"[ \t]*:[ \t]*(?P<block>[|>][-+0-9]*)?[ \t]*(?:#[^\n]*)?\r?$", re.MULTILINE)
_MAPPING_ENTRY = re.compile(r"[\"']?[A-Za-z0-9_.\-]++[\"']?[ \t]*:(?:[ \t]|$)")
_B64 = re.compile(r"[A-Za-z0-9+/]*+={0,2}")
_PEM_LINE = re.compile(_B64.pattern + r"|[A-Za-z][A-Za-z0-9-]*: .*")  # base64, or a header
_MIXED = re.compile(r"(?=.*[A-Z])(?=.*[a-z])(?=.*[0-9])")  # hex digests and IDs do not mix
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:?\d\d)?[ \t]+")
_FLAG = re.compile(r"^(?P<flag>--?[A-Za-z0-9_.-]+)(?:=(?P<value>.*))?$", re.DOTALL)


@dataclass(frozen=True)
class _Tool:
    """The short flags of a command-line tool whose value is a secret (module docstring)."""

    separate: frozenset[str] = frozenset()  # the next word is the value: ``-a SECRET``
    attached: frozenset[str] = frozenset()  # the value is glued on: ``-pSECRET``
    userpass: bool = False  # values are ``user:secret``; only the secret goes


_MYSQL = _Tool(attached=frozenset({"-p"}))
_P_FLAG = _Tool(separate=frozenset({"-p"}), attached=frozenset({"-p"}))
_TOOLS: Mapping[str, _Tool] = {
    **dict.fromkeys(("mysql", "mysqldump", "mysqladmin", "mysqlimport", "mysqlcheck",
                     "mysqlshow", "mysqlslap", "mysqlpump", "mariadb", "mariadb-dump",
                     "mariadb-admin", "mariadb-import", "mariadb-check", "mariadb-show"), _MYSQL),
    "curl": _Tool(separate=frozenset({"-u", "--user", "-U", "--proxy-user"}),
                  attached=frozenset({"-u", "-U"}), userpass=True),
    **dict.fromkeys(("redis-cli", "valkey-cli", "keydb-cli"), _Tool(separate=frozenset({"-a"}))),
    **dict.fromkeys(("ldapsearch", "ldapadd", "ldapmodify", "ldapdelete", "ldapwhoami",
                     "ldappasswd", "ldapmodrdn", "ldapcompare"),
                    _Tool(separate=frozenset({"-w"}), attached=frozenset({"-w"}))),
    **dict.fromkeys(("sshpass", "mongo", "mongosh", "mongodump", "mongorestore", "mongoexport",
                     "mongoimport", "mongostat", "mongotop", "mongofiles", "login"), _P_FLAG),
}
_LOGIN_CLIS = ("docker", "podman", "nerdctl", "buildah", "skopeo")  # ``login`` only after these
_TOOL = re.compile(
    r"(?<![\w.\-])(?P<tool>(?:" + "|".join(_LOGIN_CLIS) + r")[ \t]+login|" +
    "|".join(re.escape(t) for t in sorted(_TOOLS, key=len, reverse=True) if t != "login") +
    r")(?![\w.\-/])")
# One word of a command: quoted parts and plain characters, after blanks or a line continuation
# (a backslash that ends the text is the continuation, not a word).
_ARG = re.compile(r"(?:[ \t]|\\\r?\n)+(?P<arg>(?!\\[ \t]*(?:\r?\n|\Z))"
                  r"(?:\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|[^\s;&|<>()`\"'])+)")


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
    """True for a variable, flag or label name that usually holds a secret (module docstring)."""
    return bool(_SECRET_NAME.search(name) or _LAST_WORD.search(name))


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


def _span(text: str, start: int, mask_start: int, mask_end: int, name: str) -> _Hit:
    """As :func:`_hit`, and claimed without a name when the value is a mask already."""
    if text[mask_start:mask_end] == MASK:
        return _Hit(start, mask_end, 0, 0, "")
    return _hit(start, mask_start, mask_end, name)


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


def _pem_blocks(text: str) -> Iterator[_Hit]:
    if "-----BEGIN " not in text:
        return
    pos, unended = 0, set[str]()  # kinds with no END after pos: not searched for again
    while begin := _PEM_BEGIN.search(text, pos):
        kind = begin["kind"]
        stop = -1 if kind in unended else text.find(f"-----END {kind}-----", begin.end())
        if "PRIVATE KEY" not in kind:
            if stop >= 0 and _PEM_BODY.fullmatch(text, begin.end(), stop):
                yield _Hit(begin.start(), stop, 0, 0, "")  # a certificate: left as it is
            else:
                unended.add(kind)
            pos = max(stop, begin.end())
            continue
        end = len(text) if stop < 0 else stop
        edge = _PEM_EDGE.match(text, begin.end(), end)
        start = edge.end() if edge else begin.end()
        while end > start:  # keep the line breaks around the body
            if text[end - 1].isspace():
                end -= 1
            elif end - 2 >= start and text[end - 2:end] in ("\\n", "\\r"):
                end -= 2
            else:
                break
        yield _span(text, begin.start(), start, end, "private-key")
        pos = len(text) if stop < 0 else stop


def _yaml_blocks(text: str) -> Iterator[_Hit]:
    """``name:`` ending a line, its value on the more indented lines below (YAML)."""
    pos = 0
    while m := _YAML_KEY.search(text, pos):
        pos = m.end()
        if not is_secret_name(m["key"]):
            continue
        ref, first, last, i = len(m["indent"]), -1, -1, m.end()
        while i < len(text):  # text[i] is the newline before the next line
            j = text.find("\n", i + 1)
            j = len(text) if j < 0 else j
            line = text[i + 1:j]
            body = line.lstrip(" \t")
            if body.strip():
                if len(line) - len(body) <= ref or (first < 0 and _MAPPING_ENTRY.match(body)):
                    break
                first = i + 1 + len(line) - len(body) if first < 0 else first
                last = i + 1 + len(line.rstrip())
            i = j
        if m["block"]:  # claimed, so that rule 6 does not take the ``|`` for the value
            yield _Hit(m.start("key"), m.end("block"), 0, 0, "")
        if first >= 0:
            yield _span(text, first, first, last, m["key"])
            pos = last


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


def _tool_value(text: str, start: int, end: int, flag: str, tool: _Tool) -> Iterator[_Hit]:
    """The secret in the word ``text[start:end]``, the value of ``flag``: unquoted, and for a
    ``user:secret`` value only what follows the first colon."""
    if end - start >= 2 and text[start] in "\"'" and text[end - 1] == text[start]:
        start, end = start + 1, end - 1
    if tool.userpass:
        colon = text.find(":", start, end)
        if colon < 0:
            return  # no password given: the tool asks for it
        start = colon + 1
    if start < end:
        yield _span(text, start, start, end, flag)


def _commands(text: str) -> Iterator[tuple[re.Match[str], int, str, list[_Hit]]]:
    """Each command of a tool in :data:`_TOOLS`, read word by word to its end: the tool's
    match, where the reading stopped, a flag still waiting for its value, and the hits."""
    pos = 0
    while m := _TOOL.search(text, pos):
        tool, pos, pending, hits = _TOOLS[m["tool"].split()[-1]], m.end(), "", list[_Hit]()
        while word := _ARG.match(text, pos):
            pos, arg, start = word.end(), word["arg"], word.start("arg")
            if pending and not arg.startswith("-"):
                hits += _tool_value(text, start, pos, pending, tool)
                pending = ""
                continue
            flag, eq, _ = arg.partition("=")
            pending = arg if arg in tool.separate else ""
            if eq and flag.startswith("--") and flag in tool.separate:
                hits += _tool_value(text, start + len(flag) + 1, pos, flag, tool)
            elif not arg.startswith("--"):
                glued = next((f for f in tool.attached if arg.startswith(f) and arg != f), "")
                if glued:
                    hits += _tool_value(text, start + len(glued), pos, glued, tool)
        yield m, pos, pending, hits


def _tool_flags(text: str) -> Iterator[_Hit]:
    for *_, hits in _commands(text):
        yield from hits


def _continued_command(line: str) -> str:
    """The tool (and a flag waiting for its value) of a command that a trailing backslash
    continues on the next line, as words to put before that line; "" if none."""
    carry = ""
    if line.rstrip().endswith("\\"):
        for m, end, pending, _ in _commands(line):
            carry = f"{m['tool']} {pending}".rstrip() if line[end:].strip() == "\\" else ""
    return carry


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


def _webhooks(text: str) -> Iterator[_Hit]:
    if "hooks." not in text:
        return
    for m in _WEBHOOK.finditer(text):
        yield _hit(m.start(), m.start("secret"), m.end("secret"), "webhook-url")


def _token_shapes(text: str) -> Iterator[_Hit]:
    for m in _TOKEN_SHAPES.finditer(text):
        yield _hit(m.start(), m.start(), m.end(), "token-pattern")


def _base64_lines(text: str) -> Iterator[_Hit]:
    for m in _BASE64_LINE.finditer(text):
        if _MIXED.match(m["b"]):
            yield _hit(m.start(), m.start(), m.end("b"), "private-key")


_RULES: tuple[Callable[[str], Iterator[_Hit]], ...] = (
    _pem_blocks, _yaml_blocks, _headers, _bearers, _tool_flags, _named_values(_KV, "key"),
    _named_values(_FLAG_SPACE, "flag"), _url_credentials, _webhooks, _token_shapes, _base64_lines)


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


class LineRedactor:
    """Masks a stream of lines (one container's log) one line at a time, carrying across lines
    what one line cannot show: the body of a PEM private key between its ``BEGIN`` and ``END``
    lines, a YAML secret whose value is on the lines below ``password:``, and a command of
    the tools above that a backslash continues on the next line.

    Each line goes through :func:`redact_text`; a leading RFC 3339 time stamp (``docker logs
    -t``) stays. A masked key body keeps its line count (each line becomes ``***``) and counts
    once; the block ends at its ``END`` line or at the first line that is not base64 or a PEM
    header. Certificate bodies stay readable. Use one per stream; calling it is
    ``redactor(line) -> str``.
    """

    def __init__(self, *, report: RedactionReport | None = None, table: str = "logs") -> None:
        self.report = report
        self.table = table
        self._pem = ""  # the kind of the PEM block the stream is in
        self._yaml: tuple[int, str] | None = None  # a secret key's indent and name
        self._counted = False  # whether this block's masking was counted
        self._command = ""  # a tool command continued on the next line (``\\`` at the end)

    def __call__(self, line: str) -> str:
        stamp = _STAMP.match(line)
        head = stamp.group() if stamp else ""
        body = line[len(head):]
        out = self._pem_line(body) if self._pem else None
        if out is None and self._yaml is not None:
            out = self._yaml_line(body)
        if out is None:
            carry, found = self._command and self._command + " ", RedactionReport()
            out = redact_text(carry + body, report=found, table=self.table)
            if not out.startswith(carry):  # the carried words changed: redact the line alone
                carry, found = "", RedactionReport()
                out = redact_text(body, report=found, table=self.table)
            if self.report is not None:
                self.report.merge(found)
            out, self._command = out[len(carry):], _continued_command(carry + body)
            self._watch(body)
        return head + out

    def _count(self, name: str) -> None:
        if not self._counted and self.report is not None:
            self.report.add(self.table, name)
        self._counted = True

    def _watch(self, body: str) -> None:
        """Look for a block this line opens: the last PEM ``BEGIN`` without its ``END``, or a
        secret YAML key with nothing after its colon."""
        for begin in _PEM_BEGIN.finditer(body):
            if f"-----END {begin['kind']}-----" not in body[begin.end():]:
                self._pem, self._counted = begin["kind"], False
        key = _YAML_KEY.match(body)
        if key and not self._pem and is_secret_name(key["key"]):
            self._yaml, self._counted = (len(key["indent"]), key["key"]), False

    def _pem_line(self, body: str) -> str | None:
        end = body.find(f"-----END {self._pem}-----")
        content = body if end < 0 else body[:end]
        private = "PRIVATE KEY" in self._pem
        if not _PEM_LINE.fullmatch(content.strip()) or not (private or _B64.fullmatch(
                content.strip())):
            self._pem = ""  # not a body line: the block ended without its END line
            return None
        if end >= 0:
            self._pem = ""
        rest = redact_text(body[end:], report=self.report, table=self.table) if end >= 0 else ""
        if not private or content.strip() in ("", MASK):
            return content + rest
        self._count("private-key")
        return content[:len(content) - len(content.lstrip())] + MASK + rest

    def _yaml_line(self, body: str) -> str | None:
        assert self._yaml is not None
        (indent, name), text = self._yaml, body.lstrip(" \t")
        if not text.strip():
            return body
        if len(body) - len(text) <= indent or (not self._counted and _MAPPING_ENTRY.match(text)):
            self._yaml = None
            return None
        if text.rstrip() != MASK:
            self._count(name)
        return body[:len(body) - len(text)] + MASK


def redact_lines(lines: Iterable[str], *, report: RedactionReport | None = None,
                 table: str = "logs") -> list[str]:
    """Mask secrets in a sequence of lines with one :class:`LineRedactor` (multi-line secrets
    included, which :func:`redact_text` on each line alone would only partly see)."""
    redactor = LineRedactor(report=report, table=table)
    return [redactor(line) for line in lines]


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


def _masked(value: str, userpass: bool) -> str:
    """``value`` masked; for a ``user:secret`` value, only what follows the first colon."""
    if not userpass:
        return MASK if value else value
    user, colon, secret = value.partition(":")
    return f"{user}:{MASK}" if colon and secret else value


def _tool(name: str, previous: str) -> _Tool | None:
    """The tool a program name (a path's last part) is, if its short flags take secrets."""
    return _TOOLS.get(name) if name != "login" or previous in _LOGIN_CLIS else None


def redact_argv(argv: Iterable[str], *, report: RedactionReport | None = None,
                table: str = "command", program: str = "") -> list[str]:
    """Mask secret command-line arguments: ``--password=x``, ``--token x``, the short flags of
    known tools (``mysql -pX``, ``curl -u user:X``, ``redis-cli -a X``; module docstring), and
    secrets inside any argument (a ``sh -c`` script, URLs with credentials, ``KEY=value``).

    Args:
        program: the program ``argv`` goes to when it holds only the arguments (``docker
            inspect``'s ``Path`` for its ``Args``); a program named in ``argv`` is seen anyway.
    """
    out: list[str] = []

    def put(flag: str, prefix: str, value: str, userpass: bool) -> None:
        new = _masked(value, userpass)
        if new != value and report is not None:
            report.add(table, flag)
        out.append(prefix + new)

    previous = program.rsplit("/", 1)[-1]
    tool, pending = _tool(previous, ""), ""
    for arg in argv:
        by_tool = tool is not None and pending in tool.separate
        if pending and not (by_tool and arg.startswith("-")):  # a tool's flag may go bare
            put(pending, "", arg, by_tool and tool is not None and tool.userpass)
            pending = ""
            continue
        name = arg.rsplit("/", 1)[-1]
        tool, previous, pending = _tool(name, previous) or tool, name, ""
        userpass = tool is not None and tool.userpass
        glued = next((f for f in tool.attached if arg.startswith(f) and arg != f), "") if (
            tool is not None and not arg.startswith("--")) else ""
        m = _FLAG.match(arg)
        if glued:
            put(glued, glued, arg[len(glued):], userpass)
        elif m and (is_secret_name(m["flag"]) or (tool and m["flag"] in tool.separate)):
            if m["value"] is None:
                pending = m["flag"]
                out.append(arg)
            else:
                put(m["flag"], m["flag"] + "=", m["value"],
                    userpass and tool is not None and m["flag"] in tool.separate)
        else:
            out.append(redact_text(arg, report=report, table=table))
    return out

"""The pieces :mod:`opskit.bundle` is built from: its tables, their Parquet form, the last
redaction pass, findings derived from frames, and the incident report.

Everything here is a pure function of pandas frames (no engine, no docker import), and this
module imports pandas when it is imported: :mod:`opskit.bundle` imports it only inside the
functions that read or write a bundle, so ``import opskit`` stays free of pandas.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from . import labels as L
from .bundle_format import JSON_COLUMNS, NAME_COLUMN, TIME_COLUMN, decode, encode
from .findings import Finding
from .redact import MASK, RedactionReport, is_secret_name, redact_text
from .units import parse_time

__all__ = ["FINDING_COLUMNS", "JSON_COLUMNS", "Table", "availability_by_service", "concat_like",
           "decode", "empty_logs", "encode", "findings_frame", "findings_from_actions",
           "make_table", "pick_events", "redaction_table", "render", "report_blocks",
           "rule_findings", "scrub", "scrub_value", "target_names", "tidy"]

FINDING_COLUMNS = ["since", "container", "service", "kind", "severity", "failure_class", "hint",
                   "evidence", "key", "container_id", "source"]
_CLASS_OF = {"unhealthy": "communication", "crash_loop": "recovery", "quarantined": "recovery",
             "interrupted_recovery": "recovery", "probe_error": "detection"}


# -- tables --------------------------------------------------------------------------------------


class Table(pd.DataFrame):  # type: ignore[misc]
    """One table of a bundle: a DataFrame that can also be called like the live method.

    ``b.logs`` is the whole table; ``b.logs("web", since="5m", grep="error")`` filters it the
    way ``ops.logs("web", ...)`` reads the engine, so a bundle can stand in for an engine
    (:class:`opskit.bundle.Source`). A target is a service (all its containers), a container
    name or an ID; ages such as ``"5m"`` count back from the end of the recording. What pandas
    operations return is a plain DataFrame.
    """

    _metadata = ["_kind", "_names", "_until"]

    def __call__(self, *args: Any, **kw: Any) -> pd.DataFrame:
        """The rows the live method would return: ``containers(all=True)``,
        ``events(since, until)``, ``stats(targets)``, ``logs(target, since=, until=, tail=,
        grep=)``, and ``health``, ``actions``, ``findings``, ``inspections`` (``target``)."""
        kind = self._kind
        if kind == "events":
            return self._window(pd.DataFrame(self), *args[:2], **kw)
        if kind == "containers":
            frame = pd.DataFrame(self)
            if not kw.get("all", args[0] if args else True):
                frame = frame[frame["state"].astype(str) == "running"]
            return frame.reset_index(drop=True)
        target = args[0] if args else kw.pop("target", kw.pop("targets", None))
        frame = self._select(target)
        if kind == "logs":
            frame = self._window(frame, kw.get("since"), kw.get("until"))
            if kw.get("grep"):
                frame = frame[frame["line"].astype(str).str.contains(kw["grep"], regex=True)]
            if kw.get("tail") is not None:
                frame = frame.groupby(frame["container"].astype(str), sort=False).tail(
                    int(kw["tail"]))
        return frame.reset_index(drop=True)

    def _select(self, target: str | Sequence[str] | None) -> pd.DataFrame:
        frame = pd.DataFrame(self)
        if target is None or NAME_COLUMN[self._kind] not in frame:
            return frame
        wanted: set[str] = set()
        for item in [target] if isinstance(target, str) else target:
            wanted.update(self._names.get(item, [item]))
        return frame[frame[NAME_COLUMN[self._kind]].astype(str).isin(wanted)]

    def _window(self, frame: pd.DataFrame, since: Any = None, until: Any = None) -> pd.DataFrame:
        column = TIME_COLUMN.get(self._kind)
        end = self._until
        for bound, keep in ((parse_time(since, now=end), "ge"), (parse_time(until, now=end), "le")):
            if bound is not None and column in frame:
                frame = frame[getattr(frame[column], keep)(pd.Timestamp(bound))]
        return frame.reset_index(drop=True)


def make_table(frame: pd.DataFrame, kind: str, names: Mapping[str, list[str]],
               until: datetime | None) -> Table:
    """Wrap a frame as the bundle table ``kind`` (see :class:`Table`)."""
    table = Table(frame)
    table._kind, table._names, table._until = kind, dict(names), until
    return table


def target_names(containers: pd.DataFrame) -> dict[str, list[str]]:
    """Container names per target: each name, full and short ID, and service."""
    out: dict[str, list[str]] = {}
    for cid, name, service in zip(containers["id"].astype(str), containers["name"].astype(str),
                                  containers["service"].astype(str), strict=True):
        for key in (name, cid, cid[:12], service):
            if key:
                out.setdefault(key, [])
                if name not in out[key]:
                    out[key].append(name)
    return out


def concat_like(frames: Sequence[pd.DataFrame], empty: pd.DataFrame) -> pd.DataFrame:
    """Concatenate frames of one kind, keeping their dtypes: categories are united (in the
    first frame's order), other columns keep the first frame's dtype; ``empty`` when none."""
    parts = [f for f in frames if len(f)]
    if not parts:
        return empty
    out = pd.concat(parts, ignore_index=True)
    for column, dtype in parts[0].dtypes.items():
        if isinstance(dtype, pd.CategoricalDtype):
            levels = list(dict.fromkeys(v for f in parts for v in f[column].cat.categories))
            out[column] = pd.Categorical(out[column].astype(object), categories=levels)
        elif str(out[column].dtype) != str(dtype):
            out[column] = out[column].astype(dtype)
    return out


def pick_events(events: pd.DataFrame, ids: Iterable[str], services: Sequence[str] | None,
                scope: str | None) -> pd.DataFrame:
    """Events of the chosen containers (and of their services' removed ones), plus the event
    stream's own gap and connect records; opskit's lease containers are left out."""
    ids = set(ids)
    keep = []
    for kind, actor, attrs in zip(events["kind"].astype(str), events["actor_id"].astype(str),
                                  events["attributes"], strict=True):
        attrs = attrs if isinstance(attrs, dict) else {}
        ours = (scope is None or attrs.get(L.SCOPE) == scope) and attrs.get(L.ROLE) != "lease" \
            and bool(services) and attrs.get(L.SERVICE) in (services or ())
        keep.append(kind in ("gap", "connect") or actor in ids or ours)
    return tidy(events[keep])


def tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """A new index, and categories without the levels the rows left behind."""
    out = frame.reset_index(drop=True).copy()
    for column, dtype in out.dtypes.items():
        if str(dtype) == "category":
            out[column] = out[column].cat.remove_unused_categories()
    return out


def empty_logs() -> pd.DataFrame:
    """A logs frame with no rows and the live dtypes."""
    return pd.DataFrame({
        "ts": pd.Series([], dtype="datetime64[ns, UTC]"),
        "container": pd.Categorical([]),
        "stream": pd.Categorical([], categories=["stdout", "stderr"]),
        "line": pd.Series([], dtype="string")})


def availability_by_service(events: pd.DataFrame, start: datetime, end: datetime
                            ) -> pd.DataFrame:
    """:func:`opskit.metrics.availability` per service, from the service's ``create`` when it
    was created within the range (it was not down before it existed)."""
    from .metrics import availability

    born: dict[str, datetime] = {}
    for ts, action, attrs in zip(events["ts"], events["base_action"].astype(str),
                                 events["attributes"], strict=True):
        service = attrs.get(L.SERVICE, "") if isinstance(attrs, dict) else ""
        if service and service not in born:
            born[service] = ts.to_pydatetime(warn=False) if action == "create" else start
    parts = [availability(events, since=max(start, first), until=end, service=service)
             for service, first in sorted(born.items())]
    return pd.concat(parts, ignore_index=True) if parts else availability(events.iloc[:0])


# -- Parquet -------------------------------------------------------------------------------------


def scrub_value(value: Any, report: RedactionReport, category: str) -> Any:
    """Mask secrets in a JSON-like value: strings by :func:`~opskit.redact.redact_text`, and
    string values under secret-looking keys wholly (names kept); counted into ``report``."""
    if isinstance(value, str):
        return redact_text(value, report=report, table=category)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if isinstance(item, str) and item not in ("", MASK) and is_secret_name(str(key)):
                report.add(category, str(key))
                out[key] = MASK
            else:
                out[key] = scrub_value(item, report, category)
        return out
    if isinstance(value, list | tuple):
        return [scrub_value(v, report, category) for v in value]
    return value


def scrub(frame: pd.DataFrame, report: RedactionReport, json_columns: Iterable[str] = ()
          ) -> pd.DataFrame:
    """Run every text cell through the redaction rules once more (live frames are already
    redacted: this is the safety net of what goes into a file). Each distinct value is checked
    once; masks are counted per cell, under the column's name."""
    out = frame.copy()
    for column in json_columns:
        out[column] = pd.Series([scrub_value(v, report, column) for v in out[column]],
                                dtype=object, index=out.index)
    for column in out.columns:
        series = out[column]
        if column in json_columns or not (
                isinstance(series.dtype, pd.CategoricalDtype) or series.dtype == object
                or pd.api.types.is_string_dtype(series.dtype)):
            continue
        values = series.astype(object)
        changed: dict[str, tuple[str, RedactionReport]] = {}
        for value in values.dropna().unique():
            if isinstance(value, str):
                found = RedactionReport()
                masked = redact_text(value, report=found, table=str(column))
                if masked != value:
                    changed[value] = (masked, found)
        if not changed:
            continue
        counts = values.value_counts()
        for value, (_, found) in changed.items():
            for category, counter in found.counts.items():
                for name, n in counter.items():
                    report.add(category, name, n * int(counts[value]))
        texts = {value: text for value, (text, _) in changed.items()}
        mapped = values.map(lambda v, m=texts: m.get(v, v) if isinstance(v, str) else v)
        out[column] = mapped.astype("category") if isinstance(
            series.dtype, pd.CategoricalDtype) else mapped.astype(series.dtype)
    return out


# -- findings ------------------------------------------------------------------------------------


def findings_frame(findings: Iterable[Finding], source: str | Sequence[str] = "rules"
                   ) -> pd.DataFrame:
    """Findings as a frame (:data:`FINDING_COLUMNS`), one row per key, oldest first.

    ``source`` says where each came from (``rules``, ``watchdog``, ``actions``); a key seen
    twice keeps its first row.
    """
    items = list(findings)
    sources = [source] * len(items) if isinstance(source, str) else list(source)
    rows, seen = [], set()
    for finding, origin in zip(items, sources, strict=True):
        if finding.key not in seen:
            seen.add(finding.key)
            rows.append({**finding.to_dict(), "since": finding.since, "source": origin})
    frame = pd.DataFrame(rows, columns=FINDING_COLUMNS)
    frame["since"] = pd.to_datetime(frame["since"], utc=True).astype("datetime64[ns, UTC]")
    for column in ("container", "service", "kind", "severity", "failure_class", "source"):
        frame[column] = frame[column].astype(object).astype("category")
    for column in ("hint", "key", "container_id"):
        frame[column] = frame[column].astype("string")
    frame["evidence"] = frame["evidence"].astype(object)
    return frame.sort_values(["since", "container"], kind="stable", ignore_index=True)


def rule_findings(inspections: pd.DataFrame, events: pd.DataFrame, health: pd.DataFrame,
                  stats: pd.DataFrame, now: datetime) -> list[Finding]:
    """Every detection rule (:func:`opskit.rules.evaluate`) on each inspected container, as of
    ``now``, from its recorded events, probes and stats samples."""
    from .event_records import Event
    from .inspection import ContainerInfo
    from .rules import ContainerView, evaluate

    out: list[Finding] = []
    real = events[events["kind"].astype(str) == "event"]
    for attrs in inspections["attrs"]:
        info = ContainerInfo.from_attrs(attrs)
        mine = real[real["actor_id"].astype(str) == info.id]
        seen = [Event(time_nano=int(e.time_nano), type=str(e.type), action=str(e.action),
                      base_action=str(e.base_action), actor_id=info.id,
                      attributes=e.attributes or {}, detail=str(e.detail), host=str(e.host))
                for e in mine.itertuples(index=False)]
        probes = health[health["container"].astype(str) == info.name].to_dict("records")
        samples = stats[stats["id"].astype(str) == info.id].to_dict("records")
        out.extend(evaluate(ContainerView(info=info, events=seen, probes=probes, stats=samples,
                                          now=now)))
    return out


def findings_from_actions(actions: pd.DataFrame) -> list[Finding]:
    """The incidents opskit acted on, from its action journal: one finding per finding key
    (``container_id:kind:since``), and one ``quarantined`` finding per quarantined container.
    """
    out: dict[str, Finding] = {}
    auto = actions[actions["reason"].astype(str) != "manual"]
    for _, row in auto.iterrows():
        cid, kind, since = _split_key(str(row["finding_key"] or ""))
        if not cid:
            continue
        result, name = str(row["result"]), str(row["container"])
        if result == "quarantined" and f"{cid}:quarantined" not in out:
            out[f"{cid}:quarantined"] = Finding(
                container_id=cid, container=name, service=str(row["service"]),
                kind="quarantined", severity="critical", since=row["ts"].to_pydatetime(warn=False),
                evidence={"after": kind}, failure_class="recovery",
                hint=f"The watchdog stopped acting on '{name}' after its attempt budget: fix "
                "the cause, then acknowledge the quarantine (wd.acknowledge).")
        if row["finding_key"] in out:
            continue
        out[str(row["finding_key"])] = Finding(
            container_id=cid, container=name, service=str(row["service"]), kind=kind,
            severity="critical", since=since, failure_class=_CLASS_OF.get(kind, "management"),
            evidence={"action": str(row["action"]), "result": result},
            hint=f"opskit acted on this ({row['action']}: {result}); the actions table says "
            "what was done.")
    return list(out.values())


def _split_key(key: str) -> tuple[str, str, datetime]:
    match = re.match(r"^([0-9a-f]{12,64}):([a-z_]+):(.+)$", key)
    if not match:
        return "", "", datetime.min
    try:
        return match.group(1), match.group(2), datetime.fromisoformat(match.group(3))
    except ValueError:
        return "", "", datetime.min


# -- the report ----------------------------------------------------------------------------------

Block = tuple[str, Any]
"""One piece of a report: ``("h1"|"h2"|"p"|"list", text or items)`` or ``("table", frame)``."""


def render(blocks: Sequence[Block], format: str = "markdown") -> str:
    """Render report blocks as Markdown (``"markdown"``/``"md"``) or a standalone HTML page.

    Raises:
        ValueError: another format.
    """
    if format in ("markdown", "md"):
        return "\n\n".join(_markdown(kind, body) for kind, body in blocks) + "\n"
    if format == "html":
        title = next((str(body) for kind, body in blocks if kind == "h1"), "opskit report")
        body = "\n".join(_html(kind, body) for kind, body in blocks)
        return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>"
                f"{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n"
                "</body></html>\n")
    raise ValueError(f"unknown report format {format!r}: use 'markdown' or 'html'")


_CSS = ("body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:"
        "collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}")


def _cell(value: Any) -> str:
    if value is None or (not isinstance(value, list | dict | tuple) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp | datetime):
        return str(pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S"))
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return f"{value}"


def _markdown(kind: str, body: Any) -> str:
    if kind in ("h1", "h2"):
        return f"{'#' * int(kind[1])} {body}"
    if kind == "list":
        return "\n".join(f"- {item}" for item in body)
    if kind == "table":
        if body.empty:
            return "_(none)_"
        rows = [[_cell(v).replace("|", "\\|").replace("\n", " ") for v in row]
                for row in body.itertuples(index=False)]
        head = "| " + " | ".join(str(c) for c in body.columns) + " |"
        rule = "|" + "|".join("---" for _ in body.columns) + "|"
        return "\n".join([head, rule, *("| " + " | ".join(r) + " |" for r in rows)])
    return str(body)


def _html(kind: str, body: Any) -> str:
    if kind in ("h1", "h2"):
        return f"<{kind}>{html.escape(str(body))}</{kind}>"
    if kind == "list":
        return "<ul>" + "".join(f"<li>{html.escape(str(i))}</li>" for i in body) + "</ul>"
    if kind == "table":
        if body.empty:
            return "<p><em>(none)</em></p>"
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in body.columns)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row)
                       + "</tr>" for row in body.itertuples(index=False))
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    return f"<p>{html.escape(str(body))}</p>"


def redaction_table(redaction: Mapping[str, Mapping[str, Mapping[str, int]]]
                    ) -> pd.DataFrame:
    """The manifest's redaction report as rows: table, where, name, count."""
    rows = [{"table": table, "where": where, "name": name, "count": count}
            for table, places in sorted(redaction.items())
            for where, names in sorted(places.items()) for name, count in sorted(names.items())]
    return pd.DataFrame(rows, columns=["table", "where", "name", "count"])



def report_blocks(a: Any, title: str, manifest: Mapping[str, Any] | None = None
                  ) -> list[Block]:
    """The blocks of an incident report from an :class:`opskit.bundle.Analysis`: summary,
    what failed, failures in the events, what was done, time to detect and recover,
    availability, and (with a bundle's manifest) provenance, redaction and what was captured."""
    minutes = (a.until - a.since).total_seconds() / 60
    names = ", ".join(sorted(a.containers["name"].astype(str))) or "none"
    blocks: list[Block] = [("h1", title)]
    if manifest:
        engine, by = manifest.get("engine") or {}, manifest.get("recorded_by") or {}
        blocks.append(("p", f"Recorded at {manifest.get('created_at', '?')} by opskit "
                       f"{manifest.get('opskit_version', '?')} on {by.get('host', '?')}, from "
                       f"the engine at {engine.get('host', '?')} (Docker "
                       f"{engine.get('version', '?')}, API {engine.get('api_version', '?')})."))
    blocks.append(("p", f"Time range: {a.since:%Y-%m-%d %H:%M:%S} to {a.until:%Y-%m-%d %H:%M:%S}"
                   f" UTC ({minutes:.1f} min). Containers: {names}."))
    failures, actions, recovery = a.failures, a.actions, a.recovery
    summary = []
    if len(failures):
        first = failures.sort_values("onset").iloc[0]
        kinds = failures["kind"].value_counts()
        summary.append(f"First failure: {first['onset']:%H:%M:%S} UTC, {first['container']} "
                       f"({first['kind']}); {len(failures)} failures in all ("
                       + ", ".join(f"{n} {k}" for k, n in kinds.items()) + ").")
    else:
        summary.append("No failure (crash, OOM kill or unhealthy transition) in the events.")
    results = actions["result"].astype(str).value_counts() if len(actions) else pd.Series()
    quarantined = sorted(set(actions.loc[actions["result"].astype(str) == "quarantined",
                                         "container"].astype(str))) if len(actions) else []
    summary.append(f"{len(actions)} actions recorded ("
                   + (", ".join(f"{n} {r}" for r, n in results.items()) or "none") + ")"
                   + (f"; quarantined: {', '.join(quarantined)}." if quarantined else "."))
    if len(recovery):
        detect, heal = recovery["time_to_detect_s"], recovery["time_to_recover_s"]
        summary.append(f"{len(recovery)} recoveries: time to detect median {detect.median():.2f}"
                       f" s (max {detect.max():.2f} s), time to recover median "
                       f"{heal.median():.2f} s (max {heal.max():.2f} s).")
    for row in a.availability.itertuples(index=False):
        summary.append(f"Service {row.service}: available {row.availability:.1%} of the range,"
                       f" {row.down_s:.1f} s down in {row.outages} outage(s).")
    blocks += [("h2", "Summary"), ("list", summary), ("h2", "What failed")]
    order = {"critical": 0, "warning": 1, "info": 2}
    found = a.findings.assign(rank=a.findings["severity"].astype(str).map(order)).sort_values(
        ["rank", "since"], kind="stable")
    blocks.append(("table", found.assign(hint=found["hint"].astype(str).str.slice(0, 160))[
        ["since", "container", "kind", "severity", "failure_class", "source", "hint"]]))
    blocks.append(("h2", "Failures in the events"))
    counts = failures.groupby(["container", "kind"], observed=True).agg(
        count=("onset", "size"), first=("onset", "min"), last=("onset", "max")).reset_index()
    blocks.append(("table", counts))
    blocks.append(("h2", "What was done"))
    done = actions.assign(attempt=[d.get("attempt") if isinstance(d, Mapping) else None
                                   for d in actions["details"]])
    blocks.append(("table", done[["ts", "container", "action", "reason", "result", "attempt",
                                  "duration_s", "actor"]]))
    blocks += [("h2", "Time to detect and recover"), ("table", recovery),
               ("h2", "Availability"), ("table", a.availability)]
    if manifest:
        blocks += [("h2", "Redaction"),
                   ("p", f"{manifest.get('redaction_total', 0)} values were masked before "
                    "anything was written; the bundle keeps their names and counts, never "
                    "the values."), ("table", redaction_table(manifest.get("redaction") or {})),
                   ("h2", "Captured"),
                   ("table", pd.DataFrame([{"table": k, "rows": v.get("rows")} for k, v in
                                           (manifest.get("tables") or {}).items()]))]
        notes = (manifest.get("notes") or [])
        if notes:
            blocks.append(("list", notes))
    return blocks

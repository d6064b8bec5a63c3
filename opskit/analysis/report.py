"""The incident report: blocks of text and tables, rendered as Markdown or a standalone HTML page.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

__all__ = ["Block", "redaction_table", "render", "report_blocks"]



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
    """The blocks of an incident report from an :class:`opskit.analysis.bundle.Analysis`: summary,
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

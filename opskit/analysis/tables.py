"""The tables of an incident bundle: frames that can be called like the live methods, how they are
cut from live frames, and the last redaction pass before they are written.

This module imports pandas when it is imported (:class:`Table` is a DataFrame): the modules on
``import opskit``'s path import it inside the functions that need it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from ..base import labels as L
from ..base.redact import (
    MASK,
    RedactionReport,
    is_secret_name,
    redact_text,
)
from ..base.units import parse_time
from .bundle_format import (
    NAME_COLUMN,
    TIME_COLUMN,
)
from .metrics import availability

__all__ = ["Table", "availability_by_service", "concat_like", "empty_logs", "make_table",
           "pick_events", "scrub", "scrub_value", "target_names", "tidy"]



# -- tables --------------------------------------------------------------------------------------


class Table(pd.DataFrame):  # type: ignore[misc]
    """One table of a bundle: a DataFrame that can also be called like the live method.

    ``b.logs`` is the whole table; ``b.logs("web", since="5m", grep="error")`` filters it the
    way ``ops.logs("web", ...)`` reads the engine, so a bundle can stand in for an engine
    (:class:`opskit.analysis.bundle.Source`). A target is a service (all its containers), a
    container name or an ID; ages such as ``"5m"`` count back from the end of the recording.
    What pandas operations return is a plain DataFrame.
    """

    _metadata = ["_kind", "_names", "_until"]

    def __call__(self, *args: Any, **kw: Any) -> pd.DataFrame:
        """The rows the live method would return: ``containers(all=True)``,
        ``events(since, until)``, ``stats(targets)``, ``logs(target, since=, until=, tail=,
        grep=)``, and ``health``, ``actions``, ``findings``, ``inspections`` (``target``)."""
        kind = self._kind
        if kind in ("events", "swarm_events"):
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
            # a swarm table names services and nodes itself, not through containers
            wanted.update([item] if self._kind.startswith("swarm_") else
                          self._names.get(item, [item]))
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
    """Availability (:func:`opskit.analysis.metrics.availability`) per service, from the
    service's ``create`` when it was created within the range (it was not down before it
    existed)."""

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
    """Mask secrets in a JSON-like value: strings by :func:`~opskit.base.redact.redact_text`, and
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



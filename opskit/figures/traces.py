"""What :mod:`opskit.figures.charts` draws with: frame arithmetic, styles, trace builders.

Everything here is a pure function of the frames opskit records (see :mod:`opskit.figures.charts`
for their columns). The arithmetic (:func:`network_rates`, :func:`limit_mib`,
:func:`health_segments`, :func:`event_marks`) returns frames and is tested on its own; the
trace builders return lists of plotly traces so that a figure of one kind and the combined
:func:`opskit.figures.charts.timeline` draw the same thing the same way. pandas and plotly are
imported inside the functions: importing this module imports neither.

Frames may come back from Parquet with categories that have unused levels, with ``str`` or
``object`` columns, and with timestamps of any resolution; names are compared as plain strings
(:func:`labels`) and times are drawn as naive UTC (:func:`utc`), so every axis reads in UTC.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

__all__ = [
    "ACTION_STYLES", "HEALTH_COLOURS", "MIB", "PROBE_STYLES", "TEMPLATE", "TIME_AXIS",
    "action_traces", "add_gap_lines", "band_traces", "category_axis", "color_map",
    "empty_figure", "event_marks", "event_traces", "finish", "gap_rows", "health_segments",
    "hover_text", "labels", "last", "latest", "limit_mib", "network_rates", "present",
    "probe_traces", "select", "utc",
]

TEMPLATE = "plotly_white"
TIME_AXIS = "time (UTC)"
MIB = 1 << 20
HOVER_CHARS = 200
HEALTH_STATES = ("healthy", "unhealthy", "starting")
HEALTH_COLOURS: Mapping[str, str] = {
    "healthy": "#2ca02c", "unhealthy": "#d62728", "starting": "#e6b800"}
#: Marker colour and symbol per event, keyed by ``base_action`` (``health_status`` by detail).
ACTION_STYLES: Mapping[str, tuple[str, str]] = {
    "start": ("#2ca02c", "triangle-up"),
    "die": ("#d62728", "triangle-down"),
    "oom": ("#8b0000", "x"),
    "kill": ("#ff7f0e", "diamond"),
    "restart": ("#1f77b4", "circle"),
    "health_status: healthy": (HEALTH_COLOURS["healthy"], "cross"),
    "health_status: unhealthy": (HEALTH_COLOURS["unhealthy"], "cross"),
    "health_status: starting": (HEALTH_COLOURS["starting"], "cross"),
    "pause": ("#7f7f7f", "square"),
    "unpause": ("#7f7f7f", "square-open"),
    "destroy": ("#000000", "square-x"),
}
OTHER_STYLE = ("#9e9e9e", "circle-open")
PROBE_STYLES: Mapping[str, tuple[str, str]] = {
    "ok": ("#2ca02c", "circle"), "failed": ("#d62728", "x"), "error": ("#7f7f7f", "circle-open")}
RESULT_COLOURS: Mapping[str, str] = {"ok": "#17becf", "failed": "#e377c2"}
# Event types drawn as rows; network, image and volume events name no container.
_ROW_TYPES = ("container", "opskit")


# -- frames ---------------------------------------------------------------------------------


def labels(values: pd.Series) -> pd.Series:
    """A name column as ``object`` strings with ``None`` for missing (categories dropped)."""
    return values.astype("object").where(values.notna(), None)


def present(*columns: pd.Series | None) -> list[str]:
    """The names that occur in the columns, sorted; unused category levels are left out."""
    found: set[str] = set()
    for column in columns:
        if column is not None:
            found.update(str(v) for v in column.dropna().unique() if str(v))
    return sorted(found)


def select(frame: pd.DataFrame | None, column: str,
           containers: Iterable[str] | None = None) -> pd.DataFrame | None:
    """The rows of ``frame`` whose ``column`` is one of ``containers`` (all if ``None``)."""
    if frame is None:
        return None
    if containers is not None:
        frame = frame[labels(frame[column]).isin(set(containers))]
    return frame.reset_index(drop=True)


def utc(values: pd.Series) -> pd.Series:
    """Timestamps as naive UTC, the form plotly draws without shifting (naive means UTC)."""
    import pandas as pd

    return pd.to_datetime(values, utc=True).dt.tz_localize(None)


def last(frame: pd.DataFrame, window: str | timedelta) -> pd.DataFrame:
    """The rows in the last ``window`` (``"5min"``, a timedelta) before the frame's newest row."""
    import pandas as pd

    if frame.empty:
        return frame
    return frame[frame["ts"] >= frame["ts"].max() - pd.Timedelta(window)]


def latest(*frames: pd.DataFrame | None) -> Any:
    """The newest ``ts`` across the frames (UTC), or ``None`` when all are empty."""
    import pandas as pd

    stamps = [pd.to_datetime(f["ts"], utc=True).max()
              for f in frames if f is not None and not f.empty]
    stamps = [s for s in stamps if pd.notna(s)]
    return max(stamps) if stamps else None


def network_rates(stats: pd.DataFrame) -> pd.DataFrame:
    """Receive and transmit rates in bytes/s from the cumulative ``net_rx``/``net_tx``.

    Each sample's rate is the counter's change since the previous sample of the same container
    ID (a re-created container starts its counters again) divided by the seconds between them.
    A counter that went down was reset: its rate is 0, not negative. The first sample of each
    ID, and a sample no later than its predecessor, has no rate (NaN).

    Returns:
        The frame's ``ts`` and ``name`` with ``rx_rate`` and ``tx_rate`` (float64), on the
        same index as ``stats``.
    """
    key = "id" if "id" in stats.columns else "name"
    ordered = stats.reset_index(drop=True).sort_values("ts", kind="stable")
    groups = ordered.groupby(labels(ordered[key]), sort=False, dropna=False)
    seconds = groups["ts"].diff().dt.total_seconds()
    out = ordered[["ts", "name"]].copy()
    for column, rate in (("net_rx", "rx_rate"), ("net_tx", "tx_rate")):
        delta = groups[column].diff().astype("float64")
        out[rate] = (delta / seconds).clip(lower=0.0).where(seconds > 0)
    return out.sort_index().set_axis(stats.index)


def limit_mib(stats: pd.DataFrame, host_memory: int | None = None) -> pd.Series:
    """Each sample's memory limit in MiB where it is a real limit, else NaN.

    ``docker stats`` reports an unlimited container's limit as the host's memory, so a limit
    counts as real when it is above 0 and below ``host_memory`` (``MemTotal`` of
    ``docker info``). Without ``host_memory`` the largest limit in the frame stands in for the
    host: right whenever one container in the frame runs without a limit; when every
    container has one, pass ``host_memory`` or the largest limit is not drawn.
    """
    limit = stats["mem_limit"].astype("float64")
    ceiling = float(host_memory) if host_memory else limit.max()
    return (limit / MIB).where((limit > 0) & (limit < ceiling))


def _details(events: pd.DataFrame) -> pd.Series:
    return labels(events["detail"]).fillna("")


def _kinds(events: pd.DataFrame) -> pd.Series:
    return labels(events["kind"]).fillna("event")


def gap_rows(events: pd.DataFrame | None) -> pd.DataFrame | None:
    """The rows marking a gap in the event stream (``kind == "gap"``), when events may be lost."""
    if events is None or events.empty:
        return None
    return events[_kinds(events) == "gap"]


def event_marks(events: pd.DataFrame | None, *, include_exec: bool = False) -> pd.DataFrame | None:
    """The events drawn as markers, with a ``style`` column keying :data:`ACTION_STYLES`.

    Kept: rows of type ``container`` or ``opskit`` that name a container, except gaps (drawn
    as lines) and, unless ``include_exec``, ``exec_*`` events (healthcheck probes run as
    execs: one every interval, mostly noise).
    """
    if events is None or events.empty:
        return None
    base = labels(events["base_action"]).fillna("")
    keep = ((_kinds(events) != "gap") & labels(events["name"]).notna()
            & labels(events["type"]).isin(_ROW_TYPES))
    if not include_exec:
        keep &= ~base.str.startswith("exec_")
    style = base.where(base != "health_status", "health_status: " + _details(events))
    return events.assign(style=style)[keep].reset_index(drop=True)


def health_segments(events: pd.DataFrame | None, *, until: Any = None) -> pd.DataFrame:
    """Spans of health status per container, from one ``health_status`` event to the next.

    A span also ends at the container's ``die`` or ``destroy`` (a stopped container has no
    health); repeated events of the same status extend one span. The last open span runs to
    ``until`` (default: the newest event).

    Returns:
        Columns ``container``, ``status`` (healthy, unhealthy, starting), ``start`` and
        ``end`` (UTC timestamps), ordered by container then time.
    """
    import pandas as pd

    columns = ["container", "status", "start", "end"]
    if events is None or events.empty:
        return pd.DataFrame(columns=columns)
    base = labels(events["base_action"])
    status = _details(events).where(base == "health_status", None)
    marks = events.assign(_status=status, _base=base, _name=labels(events["name"]))
    marks = marks[marks["_base"].isin(["health_status", "die", "destroy"])
                  & marks["_name"].notna()].sort_values("ts", kind="stable")
    end = pd.Timestamp(until) if until is not None else pd.to_datetime(events["ts"]).max()
    rows: list[tuple[str, str, Any, Any]] = []
    for name in present(marks["_name"]):
        current: str | None = None
        since: Any = None
        for ts, state in marks.loc[marks["_name"] == name, ["ts", "_status"]].itertuples(
                index=False):
            state = state if state in HEALTH_STATES else None
            if state is not None and state == current:
                continue
            if current is not None:
                rows.append((name, current, since, ts))
            current, since = state, ts
        if current is not None:
            rows.append((name, current, since, max(end, since)))
    return pd.DataFrame(rows, columns=columns)


# -- text -----------------------------------------------------------------------------------


def hover_text(value: Any, limit: int = HOVER_CHARS) -> str:
    """``value`` cut to ``limit`` characters and escaped, so program output shows as text."""
    import pandas as pd

    text = "" if value is None or value is pd.NA or value != value else str(value)
    text = text.strip()
    if len(text) > limit:
        text = text[:limit] + "…"
    return html.escape(text).replace("\n", "<br>")


def _naive(ts: Any) -> Any:
    import pandas as pd

    stamp = pd.Timestamp(ts)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp


def _when(ts: Any) -> str:
    text: str = _naive(ts).strftime("%Y-%m-%d %H:%M:%S.%f")
    return text[:-3] + " UTC"


def _code(value: Any) -> str:
    import pandas as pd

    return "none" if pd.isna(value) else str(int(value))


# -- figures and traces ---------------------------------------------------------------------


def color_map(names: Iterable[str]) -> dict[str, str]:
    """One colour per container name, in the order given (cycling past 20 names)."""
    from plotly.colors import qualitative

    palette = qualitative.Plotly + qualitative.Dark2 + qualitative.Set1[:2]
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def finish(fig: go.Figure, title: str, *, height: int | None = None) -> go.Figure:
    """Give ``fig`` the house look: its title, ``plotly_white``, and ``height`` if given."""
    fig.update_layout(template=TEMPLATE, title={"text": title}, height=height,
                      margin={"l": 60, "r": 20, "t": 60, "b": 50})
    return fig


def empty_figure(title: str) -> go.Figure:
    """A figure that says ``no data`` in its middle, for frames with nothing to draw."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_annotation(text="no data", x=0.5, y=0.5, xref="paper", yref="paper",
                       showarrow=False, font={"size": 16, "color": "#888888"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return finish(fig, title, height=300)


def category_axis(order: list[str]) -> dict[str, Any]:
    """A y axis with one row per container, the first name at the top."""
    return {"type": "category", "categoryorder": "array", "categoryarray": order,
            "autorange": "reversed", "title": {"text": "container"}}


def _markers(frame: pd.DataFrame, y: str, name: str, colour: str, symbol: str,
             hover: list[str], group: str) -> go.Scatter:
    import plotly.graph_objects as go

    return go.Scatter(
        x=utc(frame["ts"]), y=labels(frame[y]), mode="markers", name=name,
        legendgroup=group, hovertext=hover, hoverinfo="text",
        marker={"color": colour, "symbol": symbol, "size": 10,
                "line": {"color": colour, "width": 1.5}})


def event_traces(marks: pd.DataFrame | None) -> list[go.Scatter]:
    """One marker trace per event style (from :func:`event_marks`), named after the style."""
    if marks is None or marks.empty:
        return []
    styles = list(ACTION_STYLES) + sorted(set(marks["style"]) - set(ACTION_STYLES))
    traces = []
    for style in styles:
        rows = marks[marks["style"] == style]
        if rows.empty:
            continue
        kinds = _kinds(rows)
        hover = [f"<b>{hover_text(n)}</b> {hover_text(a)}<br>"
                 + ("" if _code(c) == "none" else f"exit code {_code(c)}<br>") + _when(t)
                 + (" (reconciled)" if k == "reconcile" else "")
                 for n, a, c, t, k in zip(labels(rows["name"]), labels(rows["action"]),
                                          rows["exit_code"], rows["ts"], kinds, strict=True)]
        colour, symbol = ACTION_STYLES.get(style, OTHER_STYLE)
        traces.append(_markers(rows, "name", style, colour, symbol, hover, "events"))
    return traces


def band_traces(segments: pd.DataFrame) -> list[go.Scatter]:
    """Health spans (from :func:`health_segments`) as thick translucent bars, one per status."""
    import plotly.graph_objects as go

    traces = []
    for status in HEALTH_STATES:
        rows = segments[segments["status"] == status]
        if rows.empty:
            continue
        xs: list[Any] = []
        ys: list[Any] = []
        hover: list[Any] = []
        for name, start, end in rows[["container", "start", "end"]].itertuples(index=False):
            text = f"<b>{hover_text(name)}</b> {status}<br>from {_when(start)}<br>to {_when(end)}"
            xs += [_naive(start), _naive(end), None]
            ys += [name, name, None]
            hover += [text, text, None]
        traces.append(go.Scatter(
            x=xs, y=ys, mode="lines", name=status, legendgroup="health", opacity=0.35,
            line={"color": HEALTH_COLOURS[status], "width": 14}, hovertext=hover,
            hoverinfo="text"))
    return traces


def probe_traces(health: pd.DataFrame | None,
                 outcomes: Iterable[str] = tuple(PROBE_STYLES)) -> list[go.Scatter]:
    """Healthcheck probes as markers, one trace per outcome (``probe ok``, ``probe failed``)."""
    if health is None or health.empty:
        return []
    outcome = labels(health["outcome"])
    traces = []
    for kind in outcomes:
        rows = health[outcome == kind]
        if rows.empty:
            continue
        took = (rows["end"] - rows["ts"]).dt.total_seconds()
        hover = [f"<b>{hover_text(n)}</b> probe {kind}, exit code {_code(c)}, took {s:.2f} s"
                 f"<br>{_when(t)}<br>{hover_text(o)}"
                 for n, c, s, t, o in zip(labels(rows["container"]), rows["exit_code"], took,
                                          rows["ts"], rows["output"], strict=True)]
        colour, symbol = PROBE_STYLES.get(kind, OTHER_STYLE)
        traces.append(_markers(rows, "container", f"probe {kind}", colour, symbol, hover,
                               "probes"))
    return traces


def action_traces(actions: pd.DataFrame | None) -> list[go.Scatter]:
    """opskit's own actions (restarts, recreations) as stars, one trace per result."""
    if actions is None or actions.empty:
        return []
    result = labels(actions["result"]).fillna("unknown")
    traces = []
    for kind in sorted(set(result)):
        rows = actions[result == kind]
        hover = [f"<b>{hover_text(n)}</b> opskit {hover_text(a)}: {kind}<br>{hover_text(r)}"
                 f"<br>{_when(t)}"
                 for n, a, r, t in zip(labels(rows["container"]), labels(rows["action"]),
                                       rows["reason"], rows["ts"], strict=True)]
        colour = RESULT_COLOURS.get(kind, OTHER_STYLE[0])
        traces.append(_markers(rows, "container", f"opskit {kind}", colour, "star", hover,
                               "actions"))
    return traces


def add_gap_lines(fig: go.Figure, gaps: pd.DataFrame | None) -> None:
    """Draw each event-stream gap as a dashed vertical line over every row, hover on its label."""
    if gaps is None or gaps.empty:
        return
    for ts, action, detail in zip(utc(gaps["ts"]), labels(gaps["action"]),
                                  _details(gaps), strict=True):
        text = (f"event stream gap at {_when(ts)}: events may be missing"
                f"<br>{hover_text(action)} {hover_text(detail)}")
        fig.add_shape(type="line", x0=ts, x1=ts, xref="x", y0=0, y1=1, yref="paper",
                      line={"color": "#555555", "dash": "dash", "width": 1}, name="gap")
        fig.add_annotation(x=ts, xref="x", y=1, yref="paper", yanchor="bottom", text="gap",
                           hovertext=text, showarrow=False, font={"size": 10})

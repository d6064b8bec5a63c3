"""Plotly figures of what opskit records: stats, events, health probes, logs, one timeline.

Plain functions from pandas frames to ``plotly.graph_objects.Figure``; they know nothing of
widgets, and importing this module imports neither pandas nor plotly. Every figure has a
title, a UTC time axis and the ``plotly_white`` template; a frame with nothing to draw
(empty, or filtered to nothing) gives a figure that says ``no data``.

The frames, as the observing modules and incident bundles produce them (names are
categories and may carry unused levels; times are UTC):

* stats: ``ts``, ``id``, ``name``, ``cpu_pct``, ``mem_used``, ``mem_limit``, ``mem_pct``,
  ``net_rx``, ``net_tx``, ``blk_read``, ``blk_write`` (cumulative bytes), ``pids``.
* events: ``ts``, ``time_nano``, ``type``, ``action``, ``base_action``, ``detail``,
  ``actor_id``, ``name``, ``exit_code`` (nullable), ``attributes``, ``host``, ``kind``
  (``event``, ``gap``, ``reconcile``, ``connect``).
* health: ``ts`` (probe start), ``end``, ``container``, ``exit_code``, ``output``,
  ``outcome`` (``ok``, ``failed``, ``error``: the probe could not run).
* logs: ``ts``, ``container``, ``stream`` (``stdout``, ``stderr``), ``line``.
* actions: ``ts``, ``container``, ``action``, ``result`` (``ok``, ``failed``), ``reason``.

Colours per container are assigned in name order over the whole frame, so filtering with
``containers=`` keeps each container's colour.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from . import traces

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

__all__ = ["events_timeline", "health_timeline", "log_rate_figure", "stats_figure", "timeline"]

_STREAM_COLOURS = {"stdout": "#6c8ebf", "stderr": "#d62728"}


def _line(rows: pd.DataFrame, y: Any, name: str, colour: str, hover: str, *,
          legend: bool = False, dash: str | None = None) -> go.Scatter:
    """One container's series as a line, in the container's colour and legend group."""
    import plotly.graph_objects as go

    container = str(rows["name"].iloc[0])
    return go.Scatter(x=traces.utc(rows["ts"]), y=y, mode="lines", name=name,
                      legendgroup=container, showlegend=legend,
                      line={"color": colour, "dash": dash, "width": 1.5},
                      hovertemplate=f"{container} {hover}<extra></extra>")


def stats_figure(stats: pd.DataFrame, *, containers: Iterable[str] | None = None,
                 window: str | timedelta | None = None,
                 host_memory: int | None = None) -> go.Figure:
    """CPU, memory and network of containers over time, as ``docker stats`` samples them.

    Three stacked plots share the time axis: CPU % (100 % is one CPU busy); memory used in
    MiB, with each container's limit as a dashed line of its colour; receive (solid) and
    transmit (dotted) rates in bytes/s, from the cumulative counters (see
    :func:`opskit.figures.traces.network_rates`; a counter reset counts as 0). Each container
    has one colour and one legend entry, which toggles all its lines.

    A limit is drawn only where it is real: ``docker stats`` reports an unlimited
    container's limit as the host's memory, and a line at the host's size would flatten the
    plot. A limit is real when below ``host_memory``, or, without it, below the largest limit
    in the frame (see :func:`opskit.figures.traces.limit_mib`).

    Args:
        stats: a stats frame (see the module docstring).
        containers: names to draw; ``None`` draws all.
        window: keep only this much before the newest sample (``"5min"``, a timedelta).
            Rates are computed before cutting, so the first sample kept has one.
        host_memory: the host's memory in bytes (``MemTotal`` of ``docker info``).

    Returns:
        The figure; ``no data`` when no sample is left.

    Raises:
        ValueError: ``window`` is not a duration pandas can read.
    """
    from plotly.subplots import make_subplots

    title = "Container stats"
    if stats.empty:
        return traces.empty_figure(title)
    stats = stats.reset_index(drop=True)
    colours = traces.color_map(traces.present(stats["name"]))
    rates = traces.network_rates(stats)
    frame = stats.assign(limit_mib=traces.limit_mib(stats, host_memory),
                         rx_rate=rates["rx_rate"], tx_rate=rates["tx_rate"])
    frame = traces.select(frame, "name", containers)
    if window is not None and frame is not None:
        frame = traces.last(frame, window)
    if frame is None or frame.empty:
        return traces.empty_figure(title)
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.05)
    for name, rows in _per_container(frame):
        colour = colours[name]
        fig.add_trace(_line(rows, rows["cpu_pct"], name, colour, "%{y:.1f} % CPU",
                            legend=True), row=1, col=1)
        fig.add_trace(_line(rows, rows["mem_used"] / traces.MIB, f"{name} mem", colour,
                            "%{y:.1f} MiB used"), row=2, col=1)
        if rows["limit_mib"].notna().any():
            fig.add_trace(_line(rows, rows["limit_mib"], f"{name} limit", colour,
                                "limit %{y:.0f} MiB", dash="dash"), row=2, col=1)
        fig.add_trace(_line(rows, rows["rx_rate"], f"{name} rx", colour, "rx %{y:.3s}B/s"),
                      row=3, col=1)
        fig.add_trace(_line(rows, rows["tx_rate"], f"{name} tx", colour, "tx %{y:.3s}B/s",
                            dash="dot"), row=3, col=1)
    fig.update_yaxes(title_text="CPU %", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="memory (MiB)", rangemode="tozero", row=2, col=1)
    fig.update_yaxes(title_text="network (bytes/s)", rangemode="tozero", row=3, col=1)
    fig.update_xaxes(title_text=traces.TIME_AXIS, row=3, col=1)
    fig.update_layout(hovermode="x")
    return traces.finish(fig, title, height=720)


def events_timeline(events: pd.DataFrame, *, containers: Iterable[str] | None = None,
                    include_exec: bool = False) -> go.Figure:
    """Container events on one row per container, as ``docker events`` reported them.

    Markers by ``base_action``: start green, die red, oom dark red x, kill orange, restart
    blue, health_status by status (healthy green, unhealthy red, starting yellow),
    pause/unpause grey, destroy black, anything else an open grey circle. Only events of type
    ``container`` or ``opskit`` that name a container get a marker. A gap in the event
    stream (``kind == "gap"``, events may be missing) is a dashed vertical line across all
    rows; hovering its ``gap`` label tells more. Hovering a marker shows the action, the
    exit code (of ``die``: where the engine sent one) and the time.

    Args:
        events: an events frame (see the module docstring).
        containers: names to draw; ``None`` draws all. Gaps are drawn regardless.
        include_exec: also draw ``exec_*`` events. Each healthcheck probe runs as an exec,
            so they are left out by default.

    Returns:
        The figure; ``no data`` when there is neither a marker nor a gap to draw.
    """
    import plotly.graph_objects as go

    title = "Container events"
    marks = traces.select(traces.event_marks(events, include_exec=include_exec), "name",
                         containers)
    gaps = traces.gap_rows(events)
    if (marks is None or marks.empty) and (gaps is None or gaps.empty):
        return traces.empty_figure(title)
    order = traces.present(None if marks is None else marks["name"])
    fig = go.Figure(traces.event_traces(marks))
    traces.add_gap_lines(fig, gaps)
    fig.update_layout(yaxis=traces.category_axis(order), xaxis={"title": traces.TIME_AXIS})
    return traces.finish(fig, title, height=_rows_height(len(order)))


def health_timeline(health: pd.DataFrame, events: pd.DataFrame | None = None, *,
                    containers: Iterable[str] | None = None) -> go.Figure:
    """Healthcheck probes per container, over the health status the engine derived from them.

    Each probe is a marker at its start (ok green, failed red x, error grey: the probe could
    not run), its output (first 200 characters) in the hover. With ``events``, the status
    the engine reported (``health_status`` events) is a band from one transition to the
    next (healthy green, unhealthy red, starting yellow), ending at the container's ``die``,
    and event-stream gaps are dashed lines, since transitions may be missing there.

    Args:
        health: a health frame (see the module docstring).
        events: an events frame, for the status bands.
        containers: names to draw; ``None`` draws all.

    Returns:
        The figure; ``no data`` when there is neither a probe nor a status to draw.
    """
    import plotly.graph_objects as go

    title = "Container health"
    probes = traces.select(health, "container", containers)
    statuses = traces.select(events, "name", containers)
    segments = traces.health_segments(statuses, until=traces.latest(health, events))
    order = traces.present(None if probes is None else probes["container"],
                          segments["container"])
    if not order:
        return traces.empty_figure(title)
    fig = go.Figure(traces.band_traces(segments) + traces.probe_traces(probes))
    traces.add_gap_lines(fig, traces.gap_rows(events))
    fig.update_layout(yaxis=traces.category_axis(order), xaxis={"title": traces.TIME_AXIS})
    return traces.finish(fig, title, height=_rows_height(len(order)))


def log_rate_figure(logs: pd.DataFrame, *, every: str | timedelta = "1min",
                    by_container: bool = False,
                    containers: Iterable[str] | None = None) -> go.Figure:
    """Log lines per interval, stdout and stderr stacked, as ``docker logs`` would show them.

    Args:
        logs: a logs frame (see the module docstring).
        every: the interval of one bar (``"1min"``, ``"10s"``, a timedelta).
        by_container: one plot per container, stacked and sharing the time axis; else all
            containers' lines are counted together.
        containers: names to count; ``None`` counts all.

    Returns:
        The figure; ``no data`` when no line is left.

    Raises:
        ValueError: ``every`` is not a duration pandas can read.
    """
    import pandas as pd
    from plotly.subplots import make_subplots

    title = "Log lines"
    step = pd.Timedelta(every)
    frame = traces.select(logs, "container", containers)
    if frame is None or frame.empty:
        return traces.empty_figure(title)
    keys = {"bucket": traces.utc(frame["ts"]).dt.floor(step),
            "stream": traces.labels(frame["stream"]),
            "container": traces.labels(frame["container"]) if by_container else "all"}
    counts = pd.DataFrame(keys).groupby(list(keys)).size().rename("lines").reset_index()
    panels = sorted(set(counts["container"]))
    streams = [s for s in _STREAM_COLOURS if s in set(counts["stream"])]
    streams += sorted(set(counts["stream"]) - set(streams))
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=panels if by_container else None)
    for row, panel in enumerate(panels, start=1):
        for stream in streams:
            bars = counts[(counts["container"] == panel) & (counts["stream"] == stream)]
            fig.add_trace(_bars(bars, stream, step, legend=row == 1), row=row, col=1)
        fig.update_yaxes(title_text=f"lines per {_duration(step)}", row=row, col=1)
    fig.update_xaxes(title_text=traces.TIME_AXIS, row=len(panels), col=1)
    fig.update_layout(barmode="stack")
    return traces.finish(fig, title, height=max(320, 200 * len(panels)))


def _bars(counts: pd.DataFrame, stream: str, step: pd.Timedelta, *, legend: bool) -> go.Bar:
    import plotly.graph_objects as go

    return go.Bar(x=counts["bucket"], y=counts["lines"], name=stream, legendgroup=stream,
                  showlegend=legend, marker_color=_STREAM_COLOURS.get(stream, "#9e9e9e"),
                  xperiod=step.total_seconds() * 1000, xperiodalignment="middle",
                  hovertemplate=f"%{{y}} {stream} lines<extra></extra>")


def timeline(events: pd.DataFrame | None = None, health: pd.DataFrame | None = None,
             stats: pd.DataFrame | None = None, actions: pd.DataFrame | None = None, *,
             containers: Iterable[str] | None = None) -> go.Figure:
    """The event and health timeline: what happened to each container, aligned in time.

    One row per container carries its health status bands and events (as in
    :func:`health_timeline` and :func:`events_timeline`: restarts, dies, OOM kills; no exec
    events), the probes that failed or could not run (passing ones are left out: the bands
    show them), and opskit's own actions as stars. With ``stats``, a plot below shares the
    time axis and shows each container's memory in percent of its limit, in the colours of
    :func:`stats_figure`. Event-stream gaps cross both plots as dashed lines.

    Args:
        events: an events frame.
        health: a health frame.
        stats: a stats frame.
        actions: an actions frame.
        containers: names to draw; ``None`` draws all.

    Returns:
        The figure; ``no data`` when none of the frames has anything to draw.
    """
    from plotly.subplots import make_subplots

    title = "Event and health timeline"
    marks = traces.select(traces.event_marks(events), "name", containers)
    statuses = traces.select(events, "name", containers)
    probes = traces.select(health, "container", containers)
    done = traces.select(actions, "container", containers)
    samples = traces.select(stats, "name", containers)
    end = traces.latest(events, health, stats, actions)
    segments = traces.health_segments(statuses, until=end)
    drawn = (traces.band_traces(segments) + traces.event_traces(marks)
             + traces.probe_traces(probes, ("failed", "error")) + traces.action_traces(done))
    order = traces.present(None if marks is None else marks["name"], segments["container"],
                           None if probes is None else probes["container"],
                           None if done is None else done["container"])
    with_stats = samples is not None and not samples.empty
    if not order and not with_stats:
        return traces.empty_figure(title)
    rows = 2 if with_stats else 1
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        row_heights=[0.7, 0.3] if with_stats else None)
    for trace in drawn:
        fig.add_trace(trace, row=1, col=1)
    fig.update_yaxes(traces.category_axis(order), row=1, col=1)
    if samples is not None and stats is not None and with_stats:
        colours = traces.color_map(traces.present(stats["name"]))
        for name, rows_of in _per_container(samples):
            fig.add_trace(_line(rows_of, rows_of["mem_pct"], f"{name} mem %", colours[name],
                                "%{y:.1f} % of memory limit", legend=True), row=2, col=1)
        fig.update_yaxes(title_text="memory %", rangemode="tozero", row=2, col=1)
    traces.add_gap_lines(fig, traces.gap_rows(events))
    fig.update_xaxes(title_text=traces.TIME_AXIS, row=rows, col=1)
    return traces.finish(fig, title, height=_rows_height(len(order)) + (220 if with_stats else 0))


def _per_container(stats: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The stats rows of each container, by name, each in time order."""
    names = traces.labels(stats["name"])
    return [(name, stats[names == name].sort_values("ts", kind="stable"))
            for name in traces.present(stats["name"])]


def _rows_height(rows: int) -> int:
    return max(300, 140 + 40 * rows)


def _duration(step: pd.Timedelta) -> str:
    seconds = step.total_seconds()
    for unit, size in (("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"

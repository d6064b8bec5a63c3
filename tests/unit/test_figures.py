"""Tests of opskit.figures.charts and opskit.figures.traces on hand-built frames (no engine)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from opskit import figures
from opskit.figures import traces as parts

T0 = pd.Timestamp("2026-11-26T12:00:00Z")
MIB = 1 << 20
HOST = 8 << 30


def at(seconds: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=seconds)


def naive(seconds: float) -> pd.Timestamp:
    return at(seconds).tz_localize(None)


def times(seconds: list[float]) -> pd.Series:
    return pd.Series([at(s) for s in seconds]).astype("datetime64[ns, UTC]")


def category(values: list[str | None], *unused: str) -> pd.Categorical:
    levels = sorted({v for v in values if v is not None} | set(unused))
    return pd.Categorical(values, categories=levels)


def stats_frame() -> pd.DataFrame:
    # (seconds, id, name, cpu %, MiB used, limit, net_rx, net_tx)
    rows = [
        (0, "w1", "web", 1.0, 10, 64 * MIB, 0, 0),
        (1, "w1", "web", 2.0, 11, 64 * MIB, 1000, 100),
        (2, "w1", "web", 3.0, 12, 64 * MIB, 3000, 300),
        (4, "w1", "web", 4.0, 13, 64 * MIB, 500, 50),       # counters reset
        (6, "w1", "web", 5.0, 14, 64 * MIB, 4500, 450),
        (8, "w2", "web", 6.0, 15, 64 * MIB, 100, 10),       # re-created: new id, new counters
        (0, "d1", "db", 0.5, 100, HOST, 0, 0),
        (2, "d1", "db", 0.5, 101, HOST, 2000, 0),
    ]
    secs, ids, names, cpu, used, limit, rx, tx = zip(*rows, strict=True)
    frame = pd.DataFrame({
        "ts": times(list(secs)), "id": pd.Series(ids, dtype="str"),
        "name": category(list(names), "gone"),
        "cpu_pct": pd.Series(cpu, dtype="float64"),
        "mem_used": pd.Series([u * MIB for u in used], dtype="int64"),
        "mem_limit": pd.Series(limit, dtype="int64"),
    })
    frame["mem_pct"] = frame["mem_used"] / frame["mem_limit"] * 100.0
    for column, values in (("net_rx", rx), ("net_tx", tx), ("blk_read", rx), ("blk_write", tx)):
        frame[column] = pd.Series(values, dtype="int64")
    frame["pids"] = pd.Series([3] * len(rows), dtype="int64")
    return frame


def events_frame() -> pd.DataFrame:
    # (seconds, type, action, name, exit code, kind)
    rows = [
        (0, "container", "start", "web", None, "event"),
        (1, "container", "exec_start: wget -q -O- http://localhost:8080/", "web", None, "event"),
        (2, "container", "health_status: healthy", "web", None, "event"),
        (3, "opskit", "gap", None, None, "gap"),
        (4, "container", "health_status: unhealthy", "web", None, "event"),
        (5, "container", "kill", "web", None, "event"),
        (6, "container", "die", "web", 137, "event"),
        (6.5, "container", "oom", "web", None, "event"),
        (7, "container", "start", "db", None, "reconcile"),
        (8, "network", "connect", "bridge", None, "event"),
        (10, "container", "start", "web", None, "event"),
        (11, "container", "health_status: starting", "web", None, "event"),
        (12, "container", "health_status: starting", "web", None, "event"),
    ]
    secs, types, actions, names, codes, kinds = zip(*rows, strict=True)
    ts = times(list(secs))
    base = [a.partition(": ")[0] for a in actions]
    return pd.DataFrame({
        "ts": ts, "time_nano": ts.astype("int64"),
        "type": category(list(types), "image", "volume"),
        "action": category(list(actions), "pause"),
        "base_action": pd.Series(base, dtype="str"),
        "detail": pd.Series([a.partition(": ")[2] for a in actions], dtype="str"),
        "actor_id": pd.Series([f"id{i}" for i in range(len(rows))], dtype="str"),
        "name": category(list(names), "gone"),
        "exit_code": pd.array(codes, dtype="Int64"),
        "attributes": [{"name": n or "", "image": "busybox"} for n in names],
        "host": category(["local"] * len(rows), "remote"),
        "kind": pd.Series(kinds, dtype="str"),
    })


def health_frame() -> pd.DataFrame:
    rows = [(1, "web", 0, "ok", "ok"), (3, "web", 1, "<b>" + "x" * 300, "failed"),
            (5, "web", None, "OCI runtime exec failed", "error"), (5, "db", 0, "", "ok")]
    secs, names, codes, outputs, outcomes = zip(*rows, strict=True)
    start = times(list(secs))
    return pd.DataFrame({
        "ts": start, "end": start + pd.Timedelta(milliseconds=250),
        "container": category(list(names), "gone"),
        "exit_code": pd.array(codes, dtype="Int64"),
        "output": pd.Series(outputs, dtype="str"),
        "outcome": pd.Categorical(outcomes, categories=["ok", "failed", "error"]),
    })


def logs_frame() -> pd.DataFrame:
    rows = [(0, "web", "stdout"), (10, "web", "stdout"), (20, "web", "stdout"),
            (30, "web", "stderr"), (65, "web", "stdout"), (70, "web", "stdout"),
            (80, "db", "stdout")]
    secs, names, streams = zip(*rows, strict=True)
    return pd.DataFrame({
        "ts": times(list(secs)), "container": category(list(names), "gone"),
        "stream": pd.Categorical(streams, categories=["stdout", "stderr"]),
        "line": pd.Series([f"line {i}" for i in range(len(rows))], dtype="string"),
    })


def actions_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "ts": times([9, 9.5]), "container": category(["web", "web"], "db"),
        "action": pd.Series(["restart", "restart"], dtype="str"),
        "result": pd.Series(["failed", "ok"], dtype="str"),
        "reason": pd.Series(["unhealthy for 3 probes", "retry"], dtype="str"),
    })


def by_name(fig) -> dict:
    return {trace.name: trace for trace in fig.data}


def says_no_data(fig) -> bool:
    return len(fig.data) == 0 and [a.text for a in fig.layout.annotations] == ["no data"]


def hovers(trace) -> list[str]:
    return [h for h in trace.hovertext if h is not None]


# -- frame arithmetic ----------------------------------------------------------------------


def test_network_rates_divide_by_time_and_clip_resets() -> None:
    stats = stats_frame()
    rates = parts.network_rates(stats)
    web1 = rates[stats["id"] == "w1"]
    assert np.isnan(web1["rx_rate"].iloc[0])
    assert web1["rx_rate"].iloc[1:].tolist() == [1000.0, 2000.0, 0.0, 2000.0]
    assert web1["tx_rate"].iloc[1:].tolist() == [100.0, 200.0, 0.0, 200.0]
    assert np.isnan(rates.loc[stats["id"] == "w2", "rx_rate"]).all()  # a new id starts over
    assert rates.loc[stats["id"] == "d1", "rx_rate"].iloc[1] == 1000.0


def test_limit_is_real_only_below_the_host() -> None:
    stats = stats_frame()
    inferred = parts.limit_mib(stats)
    assert set(inferred[stats["name"] == "web"]) == {64.0}
    assert inferred[stats["name"] == "db"].isna().all()
    only_web = stats[stats["name"] == "web"]
    assert parts.limit_mib(only_web).isna().all()  # every container limited: cannot tell
    assert set(parts.limit_mib(only_web, host_memory=HOST)) == {64.0}


def test_health_segments_span_transitions_and_end_at_die() -> None:
    segments = parts.health_segments(events_frame(), until=at(20))
    assert segments.to_dict("list") == {
        "container": ["web", "web", "web"],
        "status": ["healthy", "unhealthy", "starting"],
        "start": [at(2), at(4), at(11)],
        "end": [at(4), at(6), at(20)],
    }


# -- stats ---------------------------------------------------------------------------------


def test_stats_figure_traces_limit_and_rates() -> None:
    fig = figures.stats_figure(stats_frame())
    traces = by_name(fig)
    assert list(traces) == ["db", "db mem", "db rx", "db tx",
                            "web", "web mem", "web limit", "web rx", "web tx"]
    limit = traces["web limit"]
    assert limit.line.dash == "dash" and set(np.asarray(limit.y)) == {64.0}
    assert limit.line.color == traces["web"].line.color == traces["web rx"].line.color
    assert traces["db"].line.color != traces["web"].line.color
    assert np.asarray(traces["web mem"].y).tolist() == [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]
    rx = np.asarray(traces["web rx"].y, dtype=float)
    assert rx[1:5].tolist() == [1000.0, 2000.0, 0.0, 2000.0]
    assert [t.showlegend for t in fig.data].count(True) == 2
    assert {t.legendgroup for t in fig.data} == {"db", "web"}
    assert fig.layout.template.layout.to_plotly_json() == parts_template()
    assert fig.layout.xaxis3.title.text == "time (UTC)"


def parts_template() -> dict:
    import plotly.io as pio

    return pio.templates["plotly_white"].layout.to_plotly_json()


def test_stats_figure_filters_and_windows_keep_colours() -> None:
    whole = by_name(figures.stats_figure(stats_frame()))
    web = figures.stats_figure(stats_frame(), containers=["web"], window="4s")
    traces = by_name(web)
    assert list(traces) == ["web", "web mem", "web limit", "web rx", "web tx"]
    assert traces["web"].line.color == whole["web"].line.color
    assert np.asarray(traces["web"].y).tolist() == [4.0, 5.0, 6.0]  # the last 4 s
    assert np.asarray(traces["web rx"].y, dtype=float)[:2].tolist() == [0.0, 2000.0]


def test_stats_figure_with_host_memory_draws_every_real_limit() -> None:
    only_web = stats_frame().query("name == 'web'")
    assert "web limit" not in by_name(figures.stats_figure(only_web))
    assert "web limit" in by_name(figures.stats_figure(only_web, host_memory=HOST))


# -- events --------------------------------------------------------------------------------


def test_events_timeline_markers_exec_and_gaps() -> None:
    fig = figures.events_timeline(events_frame())
    traces = by_name(fig)
    assert list(traces) == ["start", "die", "oom", "kill", "health_status: healthy",
                            "health_status: unhealthy", "health_status: starting"]
    assert list(fig.layout.yaxis.categoryarray) == ["db", "web"]  # no bridge, no unused level
    assert list(traces["start"].y) == ["web", "db", "web"]
    assert traces["oom"].marker.symbol == "x" and traces["die"].marker.color == "#d62728"
    die = hovers(traces["die"])[0]
    assert "die" in die and "exit code 137" in die and "2026-11-26 12:00:06.000 UTC" in die
    assert "exit code" not in hovers(traces["kill"])[0]  # only where the engine sent one
    assert "(reconciled)" in hovers(traces["start"])[1]
    (gap,) = fig.layout.shapes
    assert gap.line.dash == "dash" and gap.yref == "paper"
    assert pd.Timestamp(gap.x0) == naive(3)
    assert "gap" in fig.layout.annotations[0].hovertext


def test_events_timeline_exec_on_request_and_filter() -> None:
    assert "exec_start" in by_name(figures.events_timeline(events_frame(), include_exec=True))
    fig = figures.events_timeline(events_frame(), containers=["db"])
    assert list(by_name(fig)) == ["start"] and len(fig.layout.shapes) == 1


# -- health --------------------------------------------------------------------------------


def test_health_timeline_probes_and_bands() -> None:
    fig = figures.health_timeline(health_frame(), events_frame())
    traces = by_name(fig)
    assert list(traces) == ["healthy", "unhealthy", "starting",
                            "probe ok", "probe failed", "probe error"]
    assert list(traces["unhealthy"].x) == [naive(4), naive(6), None]
    assert list(traces["starting"].x) == [naive(11), naive(12), None]  # to the newest row
    failed = hovers(traces["probe failed"])[0]
    assert "&lt;b&gt;" in failed and "x" * 197 + "…" in failed and "x" * 198 not in failed
    assert "exit code none" in hovers(traces["probe error"])[0]
    assert list(fig.layout.yaxis.categoryarray) == ["db", "web"]
    assert len(fig.layout.shapes) == 1


def test_health_timeline_without_events() -> None:
    traces = by_name(figures.health_timeline(health_frame()))
    assert list(traces) == ["probe ok", "probe failed", "probe error"]
    assert list(traces["probe ok"].y) == ["web", "db"]


# -- logs ----------------------------------------------------------------------------------


def test_log_rate_counts_lines_per_interval_by_stream() -> None:
    fig = figures.log_rate_figure(logs_frame())
    traces = by_name(fig)
    assert list(traces) == ["stdout", "stderr"]
    assert list(traces["stdout"].y) == [3, 3] and list(traces["stderr"].y) == [1]
    assert list(pd.to_datetime(traces["stdout"].x)) == [naive(0), naive(60)]
    assert fig.layout.barmode == "stack"
    assert fig.layout.yaxis.title.text == "lines per 1 min"


def test_log_rate_by_container_facets() -> None:
    fig = figures.log_rate_figure(logs_frame(), every="30s", by_container=True)
    assert [(t.name, t.showlegend) for t in fig.data] == [
        ("stdout", True), ("stderr", True), ("stdout", False), ("stderr", False)]
    assert [a.text for a in fig.layout.annotations] == ["db", "web"]
    assert list(fig.data[2].y) == [3, 2]  # web stdout: 0-30 s, 60-90 s
    assert fig.layout.yaxis.title.text == "lines per 30 s"


# -- the combined timeline ----------------------------------------------------------------


def test_timeline_aligns_everything() -> None:
    fig = figures.timeline(events_frame(), health_frame(), stats_frame(), actions_frame())
    names = list(by_name(fig))
    assert names[:3] == ["healthy", "unhealthy", "starting"]
    assert {"oom", "die", "probe failed", "probe error", "opskit failed", "opskit ok",
            "web mem %", "db mem %"} <= set(names)
    assert "probe ok" not in names and "exec_start" not in names
    assert list(fig.layout.yaxis.categoryarray) == ["db", "web"]
    assert by_name(fig)["web mem %"].yaxis == "y2"
    whole = by_name(figures.stats_figure(stats_frame()))
    assert by_name(fig)["web mem %"].line.color == whole["web"].line.color
    assert len(fig.layout.shapes) == 1
    assert "unhealthy for 3 probes" in hovers(by_name(fig)["opskit failed"])[0]


def test_timeline_from_parquet(tmp_path) -> None:
    frames = {"events": events_frame(), "health": health_frame(), "stats": stats_frame(),
              "actions": actions_frame()}
    for name, frame in frames.items():
        frame.to_parquet(tmp_path / f"{name}.parquet")
    loaded = {name: pd.read_parquet(tmp_path / f"{name}.parquet") for name in frames}
    assert loaded["events"]["name"].dtype == "category"
    fig = figures.timeline(**loaded)
    assert len(fig.data) == len(figures.timeline(**frames).data)
    (tmp_path / "timeline.html").write_text(fig.to_html(include_plotlyjs=False))


# -- empty input ---------------------------------------------------------------------------


@pytest.mark.parametrize("draw", [
    lambda: figures.stats_figure(stats_frame().iloc[0:0]),
    lambda: figures.stats_figure(stats_frame(), containers=["gone"]),
    lambda: figures.events_timeline(events_frame().iloc[0:0]),
    lambda: figures.events_timeline(events_frame().query("kind != 'gap'"),
                                    containers=["gone"]),
    lambda: figures.health_timeline(health_frame().iloc[0:0], events_frame().iloc[0:0]),
    lambda: figures.log_rate_figure(logs_frame().iloc[0:0]),
    lambda: figures.timeline(),
    lambda: figures.timeline(events_frame().iloc[0:0], health_frame().iloc[0:0],
                             stats_frame().iloc[0:0], actions_frame().iloc[0:0]),
])
def test_empty_frames_say_no_data(draw) -> None:
    fig = draw()
    assert says_no_data(fig)
    assert fig.layout.title.text
    fig.to_json()


def test_every_figure_serializes_with_a_title() -> None:
    made = [figures.stats_figure(stats_frame()), figures.events_timeline(events_frame()),
            figures.health_timeline(health_frame(), events_frame()),
            figures.log_rate_figure(logs_frame()), figures.timeline(events_frame())]
    for fig in made:
        assert fig.layout.title.text and fig.layout.template.layout.paper_bgcolor == "white"
        fig.to_html(include_plotlyjs=False)


def test_importing_figures_imports_no_plotly_or_pandas() -> None:
    code = ("import sys, opskit.figures.charts as f\n"
            "print(sorted(m for m in ('plotly', 'pandas', 'ipywidgets') if m in sys.modules))\n"
            "f.timeline()\n"
            "print('plotly' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True"]


def test_rates_survive_a_duplicate_index() -> None:
    stats = stats_frame()
    doubled = pd.concat([stats.iloc[:5], stats.iloc[5:]])  # what a bundle's concat leaves
    doubled.index = [0] * len(doubled)
    rates = parts.network_rates(doubled)
    assert rates["rx_rate"].iloc[1:5].tolist() == [1000.0, 2000.0, 0.0, 2000.0]
    assert "web limit" in by_name(figures.stats_figure(doubled))

"""HTML tables of the frames opskit returns, for the views. Pure formatting: no engine.

Every cell is escaped (log lines and evidence are text from containers); states and health
are coloured: green for running and healthy, red for exited, dead and unhealthy, amber for
paused, restarting and starting.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BOARD_COLUMNS", "STATE_COLOURS", "cell", "container_table", "frame_table",
           "log_table", "merge_logs"]

GREEN, RED, AMBER, GREY = "#2e7d32", "#c62828", "#ef8f00", "#757575"
STATE_COLOURS = {"running": GREEN, "healthy": GREEN, "exited": RED, "dead": RED,
                 "unhealthy": RED, "paused": AMBER, "restarting": AMBER, "starting": AMBER,
                 "created": GREY, "removing": GREY}
BOARD_COLUMNS = ("name", "service", "image", "state", "health", "exit_code", "restart_count",
                 "ports", "started_at")
_TABLE = ('<table class="opskit-table" style="border-collapse:collapse;font-size:12px">'
          "{head}{body}</table>")
_CELL = 'style="padding:2px 8px;border-bottom:1px solid #eee;text-align:left"'


def cell(value: object) -> str:
    """One value as escaped text: times as ``YYYY-MM-DD HH:MM:SS``, missing values empty."""
    import pandas as pd

    if value is None or (not isinstance(value, str | bytes) and _isna(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        return html.escape(value.strftime("%Y-%m-%d %H:%M:%S"))
    if isinstance(value, float):
        return html.escape(f"{value:.3g}")
    return html.escape(str(value))


def _isna(value: object) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def coloured(value: object) -> str:
    """A state or health value, escaped, in its colour (bold when it is bad)."""
    text = cell(value)
    colour = STATE_COLOURS.get(str(value))
    if not colour:
        return text
    weight = "bold" if colour == RED else "normal"
    return f'<span style="color:{colour};font-weight:{weight}">{text}</span>'


def _table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "<tr>" + "".join(f"<th {_CELL}>{html.escape(c)}</th>" for c in columns) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td {_CELL}>{v}</td>" for v in row) + "</tr>"
                   for row in rows)
    return _TABLE.format(head=f"<thead>{head}</thead>", body=f"<tbody>{body}</tbody>")


def frame_table(frame: pd.DataFrame | None, columns: Sequence[str] | None = None, *,
                empty: str = "nothing to show", coloured_columns: Sequence[str] = (),
                limit: int | None = None) -> str:
    """A frame as an escaped HTML table (the last ``limit`` rows); ``empty`` when it has none.

    Args:
        frame: any frame.
        columns: the columns to show, in order (those missing are skipped); all by default.
        empty: the text shown for an empty frame.
        coloured_columns: columns whose values are coloured as states.
        limit: show only the last rows.
    """
    if frame is None or frame.empty:
        return f"<i>{html.escape(empty)}</i>"
    cols = [c for c in (columns or list(frame.columns)) if c in frame.columns]
    shown = frame if limit is None else frame.tail(limit)
    rows = ([coloured(v) if c in coloured_columns else cell(v) for c, v in zip(cols, row,
                                                                                 strict=True)]
            for row in shown[cols].itertuples(index=False, name=None))
    return _table(cols, rows)


def container_table(frame: pd.DataFrame) -> str:
    """The board's table: ``ops.containers()`` with state and health coloured."""
    return frame_table(frame, BOARD_COLUMNS, empty="no containers",
                       coloured_columns=("state", "health"))


def merge_logs(frames: Sequence[pd.DataFrame], *, stream: str | None = None,
               limit: int = 500) -> pd.DataFrame:
    """Several ``ops.logs()`` frames as one, in time order, keeping one stream if asked, and
    only the last ``limit`` lines."""
    import pandas as pd

    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame({"ts": pd.Series(dtype="datetime64[ns, UTC]"),
                             "container": pd.Series(dtype="string"),
                             "stream": pd.Series(dtype="string"),
                             "line": pd.Series(dtype="string")})
    merged = pd.concat([f.astype({"container": "string", "stream": "string"}) for f in frames],
                       ignore_index=True)
    if stream:
        merged = merged[merged["stream"] == stream]
    merged = merged.sort_values("ts", kind="stable", ignore_index=True)
    return merged.tail(limit).reset_index(drop=True)


def log_table(frame: pd.DataFrame) -> str:
    """Log lines as a table (time, container, stream, line); stderr lines in red."""
    if frame.empty:
        return "<i>no log lines</i>"
    rows = []
    for ts, container, stream, line in frame[["ts", "container", "stream", "line"]].itertuples(
            index=False, name=None):
        text = f'<span style="color:{RED}">{cell(line)}</span>' if stream == "stderr" \
            else cell(line)
        rows.append([cell(ts), cell(container), cell(stream),
                     f'<code style="white-space:pre-wrap">{text}</code>'])
    return _table(["time (UTC)", "container", "stream", "line"], rows)

"""Plotly views of opskit's frames (stats, events, health, logs).

``opskit.figures`` is a public path: ``opskit.figures.stats_figure(frame)``. Importing it imports
neither pandas nor plotly; drawing a figure does.
"""

from .charts import events_timeline, health_timeline, log_rate_figure, stats_figure, timeline

__all__ = ["events_timeline", "health_timeline", "log_rate_figure", "stats_figure", "timeline"]

"""Verbs that read the engine: inspect, ps, logs, stats, events, journal, collector."""

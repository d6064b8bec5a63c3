"""Incident bundles: what happened to some services, in one file that opens anywhere.

    b = ops.record("incident-2026-11-26", services=["web"], since="30m")   # or around=finding
    b = opskit.open_bundle("incident-2026-11-26.opsb")                     # no engine needed
    b.containers; b.stats; b.events; b.logs; b.health; b.actions; b.findings   # DataFrames
    b.logs("web", grep="error")      # each table can be called like the live method
    b.timeline(); print(b.report()); b.replay()

**The file** (``.opsb``) is a zip: ``manifest.json`` (format version, opskit and engine
versions, the engine's and the recorder's host, the time range, what was captured and how, the
redaction report) and one Parquet file per table: ``containers``, ``inspections`` (the redacted
``docker inspect`` payloads), ``stats``, ``events``, ``logs``, ``health``, ``actions`` and
``findings``. Tables have the live frames' columns and dtypes (the manifest keeps them; dict
columns travel as JSON). It is written with :func:`opskit.base.durable.atomic_write` (a temporary
file beside it, fsync, rename): the path holds the whole bundle or nothing new, a full disk or
``max_bytes`` raises :class:`~opskit.base.errors.StorageError` (``too_big`` for the cap).

**Secrets.** Live frames are redacted already (:mod:`opskit.base.redact`); the inspect payloads are
redacted here, and every text cell of every table goes through the rules once more before it is
written. The manifest's ``redaction`` lists what was masked per table (``{table: {where:
{name: count}}}``): names and counts, never values.

**One code path for live and recorded.** :class:`Source` is what the analysis needs; an
:class:`~opskit.ops.Ops` and a :class:`Bundle` both satisfy it, so :func:`analysis` (findings,
failures, time to detect and recover, availability, figures, a report) takes either.

Opening a bundle imports pandas, pyarrow and (for figures) plotly, never docker.
"""

from __future__ import annotations

import json
import logging
import platform
import socket
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..act.actions import default_actor
from ..base import labels as L
from ..base.durable import atomic_write
from ..base.errors import ContainerNotFound, InvalidBundle, InvalidSpec, OpsKitError
from ..base.redact import RedactionReport, redact_text
from ..base.units import parse_duration, parse_time
from ..base.version import __version__
from ..engine.connection import Engine
from ..engine.events import engine_time_ns
from ..figures import charts as f
from ..figures.charts import stats_figure, timeline
from ..observe.health import health_frame
from ..observe.inspection import ContainerInfo, redacted_attrs
from ..observe.listing import containers_frame
from ..observe.logs import read_logs
from ..records.findings import Finding
from ..records.statsframe import empty_frame
from ..recover.evidence import incidents_dir
from ..recover.watchdog import Watchdog
from . import metrics
from .bundle_format import (
    DECODED_FACTOR,
    JSON_COLUMNS,
    check_manifest,
    encode,
    load_manifest,
    open_tables,
    read_member,
    zip_members,
)
from .incidents import findings_frame, findings_from_actions, rule_findings
from .replay import failure_starts, replay, replay_figure
from .report import render, report_blocks
from .tables import (
    availability_by_service,
    concat_like,
    empty_logs,
    make_table,
    pick_events,
    scrub,
    scrub_value,
    target_names,
    tidy,
)

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from .replay import Scenario

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_OPEN_BYTES", "FORMAT", "SUFFIX", "SWARM_TABLES",
           "TABLES", "Analysis",
           "Bundle", "Source", "analysis", "open_bundle", "record", "watchdog_bundle",
           "write_bundle"]

log = logging.getLogger("opskit")

FORMAT = "opskit-bundle"
VERSION = 1
SUFFIX = ".opsb"
MANIFEST = "manifest.json"
TABLES = ("containers", "inspections", "stats", "events", "logs", "health", "actions",
          "findings")
SWARM_TABLES = ("swarm_nodes", "swarm_services", "swarm_tasks", "swarm_events")
"""Tables a bundle of a Swarm adds (:meth:`opskit.Swarm.record`); absent from other bundles."""
DEFAULT_MAX_BYTES = 100 * 2**20
DEFAULT_OPEN_BYTES = 256 * 2**20


class Source(Protocol):
    """What :func:`analysis` reads: an :class:`~opskit.ops.Ops` (live) or a :class:`Bundle`.

    ``containers()``, ``events(since, until)``, ``stats(targets)``, ``logs(target)``,
    ``health(target)`` and ``actions()`` return the frames of those names (columns in
    :mod:`opskit.figures.charts`); ``inspect(target)`` a
    :class:`~opskit.observe.inspection.ContainerInfo`.
    """

    def containers(self) -> Any: ...
    def events(self, since: Any = ..., until: Any = ...) -> Any: ...
    def stats(self, targets: Any = ...) -> Any: ...
    def logs(self, target: str) -> Any: ...
    def health(self, target: str) -> Any: ...
    def actions(self) -> Any: ...
    def inspect(self, target: str) -> ContainerInfo: ...


class LiveSource(Protocol):
    """What :func:`record` reads from a live engine; :class:`opskit.Ops` satisfies it."""

    @property
    def engine(self) -> Engine: ...
    def events(self, since: Any = ..., until: Any = ...) -> pd.DataFrame: ...
    def health(self, target: str) -> pd.DataFrame: ...
    def stats(self, targets: Any = ..., *, timeout: float | None = ...) -> pd.DataFrame: ...
    def actions(self) -> pd.DataFrame: ...


class Bundle:
    """A recorded incident; open one with :func:`open_bundle`, make one with :func:`record`.

    Attributes:
        path: the file; name: the incident's name; manifest: the manifest as a dict.
        since, until: the recorded time range (UTC).
        redaction: what was masked: ``{table: {where: {name: count}}}``.
        containers, inspections, stats, events, logs, health, actions, findings: the tables,
            DataFrames that can be called like the live methods (``b.logs("web", tail=20)``;
            see :class:`opskit.analysis.tables.Table`).
    """

    def __init__(self, path: Path, manifest: dict[str, Any],
                 tables: Mapping[str, pd.DataFrame]) -> None:

        self.path = path
        self.manifest = manifest
        self.name = str(manifest.get("name", path.stem))
        span = manifest.get("time_range") or {}
        self.since: datetime | None = parse_time(span.get("since"))
        self.until: datetime | None = parse_time(span.get("until"))
        self.redaction: dict[str, Any] = dict(manifest.get("redaction") or {})
        names = target_names(tables["containers"])

        def table(kind: str) -> Any:
            return make_table(tables[kind], kind, names, self.until)

        self.containers = table("containers")
        self.inspections = table("inspections")
        self.stats = table("stats")
        self.events = table("events")
        self.logs = table("logs")
        self.health = table("health")
        self.actions = table("actions")
        self.findings = table("findings")
        self.has_swarm = all(kind in tables for kind in SWARM_TABLES)
        self.swarm_nodes: Any = None
        self.swarm_services: Any = None
        self.swarm_tasks: Any = None
        self.swarm_events: Any = None
        if self.has_swarm:
            self.swarm_nodes = table("swarm_nodes")
            self.swarm_services = table("swarm_services")
            self.swarm_tasks = table("swarm_tasks")
            self.swarm_events = table("swarm_events")

    def __repr__(self) -> str:
        return (f"<opskit.Bundle {self.name!r} {self.since} to {self.until} "
                f"containers={len(self.containers)} events={len(self.events)}>")

    def inspect(self, target: str) -> ContainerInfo:
        """The recorded ``docker inspect`` of one container (secrets masked).

        Raises:
            ContainerNotFound: no recorded container answers to ``target``.
        """

        for attrs in self.inspections(target)["attrs"]:
            return ContainerInfo.from_attrs(attrs)
        raise ContainerNotFound(target, f"bundle {self.path.name}")

    def finding_list(self) -> list[Finding]:
        """The findings table as :class:`~opskit.records.findings.Finding` objects."""

        return [Finding.from_dict(row) for row in self.findings.to_dict("records")]

    def timeline(self, **kw: Any) -> go.Figure:
        """The event and health timeline, as live (:func:`opskit.figures.charts.timeline`)."""

        return timeline(self.events, self.health, self.stats, self.actions, **kw)

    def stats_figure(self, **kw: Any) -> go.Figure:
        """CPU, memory and network over time (:func:`opskit.figures.charts.stats_figure`)."""

        return stats_figure(self.stats, **kw)

    def analysis(self) -> Analysis:
        """:func:`analysis` of this bundle."""
        return analysis(self)

    def report(self, format: str = "markdown") -> str:
        """What failed, when, what was done, time to detect and recover, availability, and
        what was masked: Markdown, or a standalone HTML page with ``format="html"``."""
        return self.analysis().report(format, title=f"Incident {self.name}",
                                      manifest=self.manifest)

    def replay(self, scenarios: Sequence[Scenario] | None = None) -> pd.DataFrame:
        """What other detection and recovery settings would have given; see
        :func:`opskit.analysis.replay.replay`."""

        return replay(self, scenarios)

    def replay_figure(self, scenarios: Sequence[Scenario] | None = None) -> go.Figure:
        """:meth:`replay` as bars (:func:`opskit.analysis.replay.replay_figure`)."""

        return replay_figure(self.replay(scenarios), title=f"What-if replay of {self.name}")


def open_bundle(path: str | Path, *, max_bytes: int = DEFAULT_OPEN_BYTES) -> Bundle:
    """Open a bundle file; needs no engine (and never imports docker).

    A bundle may come from anywhere, so nothing in it is trusted: the zip's directory is
    judged before any member is read, each member is read no further than it declares, the
    manifest is checked field by field, and each table's size in memory is estimated before
    it is decoded. The limits:

    * the file, and its members together uncompressed, at most ``max_bytes`` (256 MiB by
      default, :data:`DEFAULT_OPEN_BYTES`: 2.5 times what :func:`record` writes by default);
    * no member over 1 MiB expanding more than 100:1
      (:data:`~opskit.analysis.bundle_format.MAX_RATIO`); members stored or deflated, not
      encrypted, no name twice;
    * the decoded tables at most 8 x ``max_bytes`` together (2 GiB by default), counting
      8 bytes a cell and every text value once per row.

    Args:
        path: the ``.opsb`` file.
        max_bytes: raise it to open a larger bundle you trust.

    Raises:
        InvalidBundle: naming what is wrong: the file is missing or not a zip; a limit above
            (which member, which limit); no manifest, or one that is not a JSON object, is
            nested too deeply, has a field of the wrong type, or another format or version; a
            table whose Parquet member cannot be read.
    """

    source = Path(path)
    where = str(source)
    try:
        size = source.stat().st_size
        if size > max_bytes:
            raise InvalidBundle(where, f"the file holds {size} bytes, more than max_bytes="
                                f"{max_bytes}; open_bundle(path, max_bytes=N) opens a larger "
                                "bundle you trust")
        with zipfile.ZipFile(source) as archive:
            members = zip_members(archive, where, max_bytes)
            if MANIFEST not in members:
                raise InvalidBundle(where, f"it holds no {MANIFEST}")
            manifest = load_manifest(read_member(archive, members[MANIFEST], where), where)
            listed = manifest.get("tables")
            kinds = TABLES + tuple(k for k in SWARM_TABLES
                                   if isinstance(listed, dict) and k in listed)
            check_manifest(manifest, where, members, format=FORMAT, version=VERSION,
                           tables=kinds)
            tables = open_tables(archive, manifest, members, where, kinds,
                                 DECODED_FACTOR * max_bytes)
        return Bundle(source, manifest, tables)
    except InvalidBundle:
        raise
    except (OSError, zipfile.BadZipFile, ValueError, KeyError, TypeError) as exc:
        raise InvalidBundle(where, f"{type(exc).__name__}: {exc}") from exc


def write_bundle(path: str | Path, manifest: Mapping[str, Any],
                 tables: Mapping[str, pd.DataFrame], *, max_bytes: int | None = DEFAULT_MAX_BYTES
                 ) -> Path:
    """Write tables and a manifest as one bundle file, atomically.

    Raises:
        StorageError: the disk is full, the folder not writable, or the file would be larger
            than ``max_bytes`` (``too_big``); nothing is left at ``path`` or beside it.
    """

    manifest = dict(manifest, format=FORMAT, version=VERSION, tables={})
    encoded = {}
    for kind in (*TABLES, *(k for k in SWARM_TABLES if k in tables)):
        data, dtypes = encode(tables[kind], JSON_COLUMNS.get(kind, ()))
        encoded[kind] = data
        manifest["tables"][kind] = {"file": f"{kind}.parquet", "rows": len(tables[kind]),
                                    "dtypes": dtypes, "json": list(JSON_COLUMNS.get(kind, ()))}
    stamp = datetime.now(UTC).timetuple()[:6]

    def write(fh: Any) -> None:
        with zipfile.ZipFile(fh, "w") as archive:
            archive.writestr(zipfile.ZipInfo(MANIFEST, stamp), json.dumps(manifest, indent=1),
                             compress_type=zipfile.ZIP_DEFLATED)
            for kind, data in encoded.items():  # Parquet is compressed already
                archive.writestr(zipfile.ZipInfo(f"{kind}.parquet", stamp), data)

    return atomic_write(path, write, max_bytes=max_bytes)


# -- recording ------------------------------------------------------------------------------------


def record(ops: LiveSource, name: str, services: Sequence[str] | None = None, since: Any = "30m",
           until: Any = None, *, around: Finding | None = None, margin: Any = "5m",
           path: str | Path | None = None, collector: Any = None,
           watchdog: Watchdog | None = None,
           policy: Any = None, logs_tail: int | None = 1000,
           max_bytes: int | None = DEFAULT_MAX_BYTES) -> Bundle:
    """Record an incident into one bundle file (``NAME.opsb``) and open it.

    Captures, for the chosen containers: ``docker ps -a`` and the redacted ``docker inspect``,
    events (the host's journal merged with the engine's replay), logs (the last ``logs_tail``
    lines of each container within the range), healthcheck probes (as this connection has seen
    them), stats (a collector's rows, else one ``docker stats`` snapshot), the action journal,
    and findings (every rule at the end of the range, the watchdog's, and the incidents opskit
    acted on).

    Args:
        ops: the connection (an :class:`opskit.Ops`).
        name: the incident's name; also the file name unless ``path`` is given.
        services: services (or container names) to record; every opskit container of the
            connection's scope when omitted.
        since, until: the time range (datetimes, ISO strings, Unix times, ages such as
            ``"30m"``); ``until`` defaults to now on the engine's clock.
        around: a finding to record around instead: its service, ``margin`` either side.
        path: where to write; ``NAME.opsb`` in the current folder by default.
        collector: a :class:`~opskit.observe.collector.Collector` whose rows to include.
        watchdog: a :class:`~opskit.recover.watchdog.Watchdog` whose findings and status to include.
        policy: the :class:`~opskit.spec.policy.RecoveryPolicy` in force (the watchdog's when
            omitted), kept for :mod:`opskit.analysis.replay`.
        logs_tail: the most log lines per container (None: all in the range).
        max_bytes: the largest file allowed.

    Raises:
        InvalidSpec: ``since`` is not before ``until``.
        StorageError: the file could not be written or would exceed ``max_bytes``; nothing
            is left at the path.
        EngineUnavailable, EngineError: the engine failed while reading.
    """
    import pandas as pd
    import pyarrow as pa


    engine = ops.engine
    now_ns, engine_id = engine_time_ns(engine.api, engine.host)
    now = datetime.fromtimestamp(now_ns / 1e9, UTC)
    if around is not None:
        services = list(services or [around.service or around.container])
        pad = timedelta(seconds=parse_duration(margin))
        start, end = around.since - pad, min(now, around.since + pad)
    else:
        start = parse_time(since, now=now) or datetime.fromtimestamp(0, UTC)
        end = parse_time(until, now=now) or now
    if end <= start:
        raise InvalidSpec("since", f"{start.isoformat()} is not before until {end.isoformat()}",
                          allowed="a time before until, or an age such as '30m'")
    target = Path(path) if path is not None else Path(
        name if name.endswith(SUFFIX) else name + SUFFIX)
    reports = {kind: RedactionReport() for kind in (*TABLES, "manifest")}
    notes: list[str] = []

    wanted = {"label": [f"{L.MANAGED}=true", f"{L.SCOPE}={engine.scope}"]}
    listed = containers_frame(engine, filters=wanted)
    if services:
        listed = listed[listed["service"].astype(str).isin(services)
                        | listed["name"].astype(str).isin(services)]
    containers = tidy(listed)
    ids, names = list(containers["id"].astype(str)), list(containers["name"].astype(str))
    if not ids:
        notes.append(f"no container of {list(services or [])} in scope {engine.scope!r}")

    rows = []
    for cid, cname in zip(ids, names, strict=True):
        try:
            raw = engine.api.inspect_container(cid)
        except Exception as exc:  # removed since the listing: recorded as a note
            notes.append(f"inspect of {cname} failed: {type(exc).__name__}")
            continue
        labels = (raw.get("Config") or {}).get("Labels") or {}
        rows.append({"id": cid, "name": cname, "service": labels.get(L.SERVICE, ""),
                     "attrs": redacted_attrs(raw, report=reports["inspections"])})
    inspections = pd.DataFrame(rows, columns=["id", "name", "service", "attrs"])

    events = pick_events(ops.events(start, end), ids, services, engine.scope)
    log_frames, probe_frames = [], []
    for cid, cname in zip(ids, names, strict=True):
        try:
            log_frames.append(read_logs(engine, cid, since=start, until=end,
                                        tail="all" if logs_tail is None else logs_tail,
                                        report=reports["logs"]))
            probe_frames.append(ops.health(cid))
        except OpsKitError as exc:
            notes.append(f"logs or health of {cname} not read: {exc.message}")
    logs = concat_like(log_frames, empty_logs())
    health = concat_like(probe_frames, health_frame([]))
    health = health[(health["ts"] >= start) & (health["ts"] <= end)]
    if collector is not None:
        stats = collector.frame(start)
        stats = stats[stats["ts"] <= end]
    else:  # one sample now: after ``end``, but the only one there is
        running = list(containers.loc[containers["state"].astype(str) == "running", "id"])
        stats = ops.stats([str(i) for i in running]) if running else empty_frame()
    stats = stats[stats["id"].astype(str).isin(ids)]
    actions = ops.actions()
    actions = actions[actions["container_id"].astype(str).isin(ids)
                      & (actions["ts"] >= start) & (actions["ts"] <= end)]

    seen = [f for f in (watchdog.findings() if watchdog is not None else [])
            if f.container_id in ids]
    ruled, acted = rule_findings(inspections, events, health, stats, end), \
        findings_from_actions(actions)
    findings = findings_frame([*seen, *ruled, *acted], ["watchdog"] * len(seen)
                              + ["rules"] * len(ruled) + ["actions"] * len(acted))

    tables = {kind: scrub(tidy(frame), reports[kind], JSON_COLUMNS.get(kind, ()))
              for kind, frame in (("containers", containers), ("inspections", inspections),
                                  ("stats", stats), ("events", events), ("logs", logs),
                                  ("health", health), ("actions", actions),
                                  ("findings", findings))}
    if policy is None and watchdog is not None:
        policy = watchdog.policy
    info = engine.info
    extra = scrub_value({
        "engine": {"host": redact_text(engine.host), "id": engine_id,
                   "version": info.get("Version"), "api_version": info.get("ApiVersion"),
                   "os": info.get("Os"), "arch": info.get("Arch"),
                   "kernel": info.get("KernelVersion")},
        "recorded_by": {"host": socket.gethostname(), "actor": default_actor(),
                        "python": platform.python_version(), "pandas": pd.__version__,
                        "pyarrow": pa.__version__},
        "watchdog": _status(watchdog), "notes": notes}, reports["manifest"], "manifest")
    manifest = {
        "name": Path(name).name.removesuffix(SUFFIX), "created_at": now.isoformat(),
        "opskit_version": __version__, **extra, "scope": engine.scope,
        "services": sorted({str(s) for s in containers["service"] if str(s)}),
        "containers": names,
        "time_range": {"since": start.isoformat(), "until": end.isoformat(),
                       "seconds": (end - start).total_seconds()},
        "captured": {"logs_tail": logs_tail, "stats": "collector" if collector is not None
                     else "snapshot", "around": around.key if around is not None else None,
                     "events": "event journal (when kept) merged with the engine's replay"},
        "policy": policy.to_dict() if policy is not None else None,
        "redaction": {k: r.to_dict() for k, r in reports.items() if r.total()},
        "redaction_total": sum(r.total() for r in reports.values()),
    }
    written = write_bundle(target, manifest, tables, max_bytes=max_bytes)
    log.info("recorded incident %s: %d containers, %d events, %d log lines, %d values masked",
             manifest["name"], len(ids), len(events), len(logs), manifest["redaction_total"])
    return open_bundle(written)


def watchdog_bundle(ops: LiveSource, watchdog: Watchdog, finding: Finding) -> str:
    """Record the bundle of one incident a watchdog acted on, into ``incidents/``; its path.

    :meth:`opskit.Ops.watch` wires this in as the watchdog's ``bundle_recorder`` (bound to the
    connection): the watchdog calls it after each recovery, on a thread of its own.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"{finding.container}-{finding.kind}-{stamp}"
    bundle = record(ops, name, [finding.service] if finding.service else None, around=finding,
                    path=incidents_dir() / f"{name}.opsb", watchdog=watchdog)
    return str(bundle.path)


def _status(watchdog: Watchdog | None) -> dict[str, Any] | None:
    if watchdog is None:
        return None
    status = dict(watchdog.status())
    status.pop("journal", None)
    return status


# -- analysis -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Analysis:
    """What :func:`analysis` found, live or recorded.

    Attributes:
        since, until: the range analysed.
        containers, events, health, stats, actions: the frames it read.
        findings: findings (:data:`opskit.analysis.incidents.FINDING_COLUMNS`).
        failures: the failure starts in the events (:func:`opskit.analysis.replay.failure_starts`).
        recovery: :func:`opskit.analysis.metrics.recovery_times`.
        availability: :func:`opskit.analysis.metrics.availability` per service, from its creation
            when it was created within the range.
        incidents: :func:`opskit.analysis.metrics.incidents_by_kind`.
    """

    since: datetime
    until: datetime
    containers: pd.DataFrame
    events: pd.DataFrame
    health: pd.DataFrame
    stats: pd.DataFrame
    actions: pd.DataFrame
    findings: pd.DataFrame
    failures: pd.DataFrame
    recovery: pd.DataFrame
    availability: pd.DataFrame
    incidents: pd.DataFrame

    def timeline(self, **kw: Any) -> go.Figure:
        """The event and health timeline (:func:`opskit.figures.charts.timeline`)."""

        return timeline(self.events, self.health, self.stats, self.actions, **kw)

    def figures(self) -> dict[str, go.Figure]:
        """The timeline, stats, events and health figures, by name."""

        return {"timeline": self.timeline(), "stats": f.stats_figure(self.stats),
                "events": f.events_timeline(self.events),
                "health": f.health_timeline(self.health, self.events)}

    def report(self, format: str = "markdown", *, title: str = "Incident report",
               manifest: Mapping[str, Any] | None = None) -> str:
        """The report (see :meth:`Bundle.report`); ``manifest`` adds provenance and
        redaction sections."""

        return render(report_blocks(self, title, manifest), format)


def analysis(source: Source, *, services: Sequence[str] | None = None, since: Any = None,
             until: Any = None) -> Analysis:
    """Findings, failures, time to detect and recover, and availability of a live engine or a
    bundle, by one code path.

    Args:
        source: an :class:`~opskit.ops.Ops` or a :class:`Bundle`.
        services: services (or container names) to look at; a bundle's own containers, or
            every opskit container on a live engine, when omitted.
        since, until: the range; a bundle's own range, or the last 30 minutes, when omitted.

    Raises:
        EngineUnavailable, EngineError: a live engine failed while reading.
    """
    import pandas as pd


    recorded = source if isinstance(source, Bundle) else None
    now = datetime.now(UTC)
    start = parse_time(since if since is not None else (
        recorded.since if recorded else "30m"), now=now) or now
    end = parse_time(until if until is not None else (recorded.until if recorded else None),
                     now=now) or now
    containers = source.containers()
    if services:
        containers = containers[containers["service"].astype(str).isin(services)
                                | containers["name"].astype(str).isin(services)]
    elif recorded is None:
        containers = containers[containers["managed"]]
    containers = tidy(containers)
    ids, names = list(containers["id"].astype(str)), list(containers["name"].astype(str))
    events = pick_events(source.events(start, end), ids, services, None)
    probes, infos = [], []
    for name in names:
        try:
            probes.append(source.health(name))
            infos.append(source.inspect(name).attrs)
        except OpsKitError:
            continue  # removed since the listing
    health = concat_like(probes, health_frame([]))
    stats = source.stats(ids) if ids else source.stats().iloc[:0]
    stats = tidy(stats[stats["id"].astype(str).isin(ids)])
    actions = source.actions()
    actions = tidy(actions[actions["container_id"].astype(str).isin(ids)
                            & (actions["ts"] >= start) & (actions["ts"] <= end)])
    inspections = pd.DataFrame({"attrs": pd.Series(infos, dtype=object)})
    if recorded is not None:
        findings = pd.DataFrame(recorded.findings)
    else:
        ruled, acted = rule_findings(inspections, events, health, stats, end), \
            findings_from_actions(actions)
        findings = findings_frame([*ruled, *acted], ["rules"] * len(ruled)
                                  + ["actions"] * len(acted))
    return Analysis(
        since=start, until=end, containers=containers, events=events, health=health,
        stats=stats, actions=actions, findings=findings,
        failures=failure_starts(events, health, inspections),
        recovery=metrics.recovery_times(actions),
        availability=availability_by_service(events, start, end),
        incidents=metrics.incidents_by_kind(actions) if len(actions) else pd.DataFrame())


"""The object a notebook user holds: ``ops = opskit.connect()``.

:class:`Ops` is a thin facade: each method is one call to the verb family's module with the
connection, so the modules stay usable (and testable) on their own. Every method spells out the
keyword arguments of the function it calls, with their types, so ``help(ops.exec)`` and a type
checker both see them; ``mypy`` checks this module without a single ``Any``.

Importing this module loads no heavy package: :mod:`opskit.analysis.bundle` (pandas, pyarrow)
is imported by :meth:`Ops.record` and :meth:`Ops.watch` when called.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeAlias

from .act import chaos as _chaos
from .act import deploy as _deploy
from .act import execute as _execute
from .act import images as _images
from .act import manage as _manage
from .act import network as _network
from .act import transfer as _transfer
from .act.actions import ActionJournal
from .act.chaos import Fault
from .act.deploy import Deployment
from .act.execute import DEFAULT_MAX_OUTPUT, ExecResult
from .act.images import BuildProgress, BuildResult
from .act.manage import VERBS, ActionResult
from .act.network import NetworkInfo
from .act.transfer import DEFAULT_MAX_COPY_BYTES
from .base.errors import InvalidSpec
from .engine.connection import DEFAULT_TIMEOUT, Engine, open_engine
from .observe import events as _events
from .observe import inspection as _inspection
from .observe import listing as _listing
from .observe import logs as _logs
from .observe import stats as _stats
from .observe.collector import Collector
from .observe.health import HealthHistory
from .observe.inspection import ContainerInfo
from .observe.journal import EventJournal
from .records.findings import Finding
from .recover import diagnose as _diagnose
from .recover.rules import RuleConfig
from .recover.watchdog import Alert, BundleRecorder, Watchdog
from .spec.policy import RecoveryPolicy
from .spec.service import ServiceSpec

if TYPE_CHECKING:
    import pandas as pd

    from .analysis.bundle import Bundle, LiveSource, Source

__all__ = ["BUNDLE_MAX_BYTES", "Ops", "TLSConfig", "as_spec", "connect"]

TLSConfig: TypeAlias = object
"""A ``docker.tls.TLSConfig``. docker-py ships no type information and only
:mod:`opskit.engine` may import it, so the facade names it ``object`` rather than ``Any``:
:func:`opskit.engine.connection.open_engine` hands it to docker-py as it is."""

BUNDLE_MAX_BYTES = 100 * 2**20
"""The default ``max_bytes`` of :meth:`Ops.record`, 100 MiB: the value of
:data:`opskit.analysis.bundle.DEFAULT_MAX_BYTES`, restated because that module loads pandas when
imported (tests/unit/test_facade.py checks they agree)."""


def connect(url: str | None = None, *, scope: str = "default", timeout: float = DEFAULT_TIMEOUT,
            tls: TLSConfig | None = None) -> Ops:
    """Connect to a Docker engine, chosen as the ``docker`` CLI does: ``url``, else
    ``DOCKER_HOST``, else ``DOCKER_CONTEXT``, else the CLI's current context, else the local
    socket.

    Args:
        url: ``unix:///var/run/docker.sock``, ``tcp://host:2376`` (TLS required unless
            loopback) or ``ssh://user@host``.
        scope: opskit acts only on containers it created in this scope.
        timeout: seconds for each non-streaming call.
        tls: a ``docker.tls.TLSConfig`` for ``tcp://``; read from ``DOCKER_TLS_VERIFY`` and
            ``DOCKER_CERT_PATH`` when omitted.

    Returns:
        The connection, an :class:`Ops`.

    Raises:
        EngineUnavailable: nothing answered (the message names the host).
        InsecureEngine: a remote ``tcp://`` engine without TLS verification.
        InvalidTarget: not an engine URL, or an unknown docker context.
        InvalidSpec: ``scope`` is not a scope name.
    """
    return Ops(open_engine(url, scope=scope, timeout=timeout, tls=tls))


class Ops:
    """Operations on one engine. Build it with :func:`connect`.

    Attributes:
        engine: the connection to the engine (its client, host and scope).
        action_journal: where every action (manual or automatic) is written.
        specs: the specs this connection deployed, by service.
    """

    def __init__(self, engine: Engine, *, journal: ActionJournal | None = None) -> None:
        self.engine = engine
        self.action_journal = journal or ActionJournal(host=engine.host)
        self._health = HealthHistory()
        self._journal: EventJournal | None = None
        self.specs: dict[str, ServiceSpec] = {}
        """The specs this connection deployed, by service: :meth:`watch` passes them on (for
        their ``recovery`` policies and ``recreate``)."""

    def __repr__(self) -> str:
        return f"<opskit.Ops {self.engine.host} scope={self.engine.scope!r}>"

    def __enter__(self) -> Ops:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool and the action journal."""
        self.action_journal.close()
        self.engine.client.close()

    @property
    def host(self) -> str:
        """The engine's address."""
        return self.engine.host

    # -- deploy ------------------------------------------------------------------------

    def demo_images(self, *, progress: Callable[[BuildProgress], None] | None = None,
                    force: bool = False) -> list[str]:
        """``docker build`` of opskit's demo images, offline; those up to date are skipped.

        See :func:`opskit.act.images.demo_images`.

        Args:
            progress: called with a :class:`~opskit.act.images.BuildProgress` for each line of
                each build.
            force: rebuild images that are up to date too.

        Returns:
            The tags of the demo images, in order.

        Raises:
            InvalidSpec: busybox is missing or not statically linked (before any engine call).
            BuildFailed, EngineError, EngineUnavailable: a build failed.
        """
        return _images.demo_images(self.engine, progress=progress, force=force)

    def build(self, path: str | os.PathLike[str], *, tag: str, dockerfile: str | None = None,
              buildargs: Mapping[str, str] | None = None,
              labels: Mapping[str, str] | None = None,
              progress: Callable[[BuildProgress], None] | None = None,
              extra_files: Mapping[str, str] | None = None,
              timeout: float | None = None) -> BuildResult:
        """``docker build --pull=false -t TAG PATH``; see :func:`opskit.act.images.build`.

        Args:
            path: the context folder; it must hold ``dockerfile``.
            tag: the reference to tag the image with.
            dockerfile: the Dockerfile's path in the context (``Dockerfile``).
            buildargs: ``--build-arg`` values.
            labels: extra image labels.
            progress: called with a :class:`~opskit.act.images.BuildProgress` per log line.
            extra_files: ``{name in context: host path}`` added to the context.
            timeout: seconds the engine may stay silent during the build (300).

        Returns:
            The tag, image ID, duration and (redacted) log of the build.

        Raises:
            InvalidSpec: the context, its Dockerfile or an extra file is missing.
            BuildFailed: a base image is not on the engine, or a step failed.
            EngineUnavailable, EngineError: the engine did not answer or refused.
        """
        return _images.build(self.engine, path, tag=tag, dockerfile=dockerfile,
                             buildargs=dict(buildargs or {}), labels=labels, progress=progress,
                             extra_files=extra_files, timeout=timeout)

    def deploy(self, spec: ServiceSpec | Mapping[str, object] | str | Path, *,
               wait: str | None = "healthy", timeout: float = 60.0,
               progress: Callable[[str], None] | None = None) -> Deployment:
        """``docker run`` made idempotent: bring a service to its spec.

        See :func:`opskit.act.deploy.deploy`. The spec is kept in :attr:`specs` for
        :meth:`watch`.

        Args:
            spec: a :class:`ServiceSpec`, a mapping of its fields, or a YAML path or text.
            wait: ``"healthy"`` (a container without a healthcheck counts once running),
                ``"running"``, or None not to wait.
            timeout: seconds each new replica may take to reach ``wait``.
            progress: called with one line per step.

        Returns:
            What the deploy did (created, kept, replaced, removed containers).

        Raises:
            InvalidSpec: the spec is not valid (before any engine call).
            ImageNotFound: the image is not present and the spec does not allow a pull.
            NameConflict: a replica's name is held by a container opskit does not own.
            PortInUse: a published host port is taken (nothing is left behind).
            DeployFailed: a new replica did not reach ``wait`` (rolled back).
        """
        parsed = as_spec(spec)
        result = _deploy.deploy(self.engine, parsed, wait=wait, timeout=timeout,
                                progress=progress)
        self.specs[parsed.name] = parsed
        return result

    def teardown(self, service: str, *, volumes: bool = False,
                 allow_foreign: bool = False) -> list[str]:
        """``docker compose down [-v]``: remove a service and what deploy made for it.

        See :func:`opskit.act.deploy.teardown`.

        Args:
            service: the service name.
            volumes: also remove its named volumes (they hold data).
            allow_foreign: act on containers outside opskit's scope.

        Returns:
            What was removed, as ``container:NAME``, ``network:NAME``, ``volume:NAME``.

        Raises:
            ContainerNotFound, OutOfScope.
        """
        removed = _deploy.teardown(self.engine, service, volumes=volumes,
                                   allow_foreign=allow_foreign)
        self.specs.pop(service, None)
        return removed

    # -- manage ------------------------------------------------------------------------

    def lifecycle(self, verb: str, target: str, *, timeout: float | None = None,
                  signal: str = "SIGKILL", allow_foreign: bool = False) -> list[ActionResult]:
        """``docker VERB TARGET`` for a verb chosen at run time (a button, a command line).

        Args:
            verb: one of :data:`opskit.act.manage.VERBS`.
            target: a container name or ID, or a service (every replica).
            timeout: seconds to wait before killing, for ``stop`` and ``restart``.
            signal: the signal, for ``kill``.
            allow_foreign: act on containers outside opskit's scope.

        Returns:
            One result per container.

        Raises:
            InvalidSpec: ``verb`` is not a life-cycle verb (nothing was done).
            ActionFailed: some containers failed; ``exc.results`` has every result.
        """
        if verb == "start":
            return self.start(target, allow_foreign=allow_foreign)
        if verb == "stop":
            return self.stop(target, timeout=timeout, allow_foreign=allow_foreign)
        if verb == "restart":
            return self.restart(target, timeout=timeout, allow_foreign=allow_foreign)
        if verb == "pause":
            return self.pause(target, allow_foreign=allow_foreign)
        if verb == "unpause":
            return self.unpause(target, allow_foreign=allow_foreign)
        if verb == "kill":
            return self.kill(target, signal=signal, allow_foreign=allow_foreign)
        if verb == "remove":
            return self.remove(target, allow_foreign=allow_foreign)
        raise InvalidSpec("verb", "is not a life-cycle verb", allowed=", ".join(VERBS), value=verb)

    def start(self, target: str, *, allow_foreign: bool = False) -> list[ActionResult]:
        """``docker start TARGET``; see :func:`opskit.act.manage.start`.

        Args:
            target: a container name or ID, or a service (every replica).
            allow_foreign: act on containers outside opskit's scope.

        Returns:
            One result per container.

        Raises:
            ContainerNotFound, OutOfScope, ActionFailed.
        """
        return _manage.start(self.engine, target, allow_foreign=allow_foreign,
                             journal=self.action_journal)

    def stop(self, target: str, *, timeout: float | None = None,
             allow_foreign: bool = False) -> list[ActionResult]:
        """``docker stop -t TIMEOUT TARGET``; see :func:`opskit.act.manage.stop`.

        Args:
            target: a container name or ID, or a service (every replica).
            timeout: seconds between SIGTERM and SIGKILL; each container's own stop timeout
                (the spec's ``stop_timeout``, else 10 s) when omitted.
            allow_foreign: act on containers outside opskit's scope.

        Returns:
            One result per container.

        Raises:
            ContainerNotFound, OutOfScope, ActionFailed.
        """
        return _manage.stop(self.engine, target, timeout=timeout, allow_foreign=allow_foreign,
                            journal=self.action_journal)

    def restart(self, target: str, *, timeout: float | None = None,
                allow_foreign: bool = False) -> list[ActionResult]:
        """``docker restart -t TIMEOUT TARGET``; see :func:`opskit.act.manage.restart`.

        Args:
            target: a container name or ID, or a service (every replica).
            timeout: seconds between SIGTERM and SIGKILL; each container's own stop timeout
                (the spec's ``stop_timeout``, else 10 s) when omitted.
            allow_foreign: act on containers outside opskit's scope.

        Returns:
            One result per container.

        Raises:
            ContainerNotFound, OutOfScope, ActionFailed.
        """
        return _manage.restart(self.engine, target, timeout=timeout,
                               allow_foreign=allow_foreign, journal=self.action_journal)

    def pause(self, target: str, *, allow_foreign: bool = False) -> list[ActionResult]:
        """``docker pause TARGET``; see :func:`opskit.act.manage.pause`.

        Args:
            target: a container name or ID, or a service (every replica).
            allow_foreign: act on containers outside opskit's scope.

        Returns:
            One result per container.

        Raises:
            ContainerNotFound, OutOfScope, ActionFailed.
        """
        return _manage.pause(self.engine, target, allow_foreign=allow_foreign,
                             journal=self.action_journal)

    def unpause(self, target: str, *, allow_foreign: bool = False) -> list[ActionResult]:
        """``docker unpause TARGET``; see :func:`opskit.act.manage.unpause`.

        Args:
            target: a container name or ID, or a service (every replica).
            allow_foreign: act on containers outside opskit's scope.

        Returns:
            One result per container.

        Raises:
            ContainerNotFound, OutOfScope, ActionFailed.
        """
        return _manage.unpause(self.engine, target, allow_foreign=allow_foreign,
                               journal=self.action_journal)

    def kill(self, target: str, *, signal: str = "SIGKILL",
             allow_foreign: bool = False) -> list[ActionResult]:
        """``docker kill -s SIGNAL TARGET``; see :func:`opskit.act.manage.kill`.

        Args:
            target: a container name or ID, or a service (every replica).
            signal: a signal name (``SIGTERM``, ``SIGHUP``...) or number.
            allow_foreign: act on containers outside opskit's scope.

        Returns:
            One result per container.

        Raises:
            InvalidTarget: an unknown signal (checked before anything is sent).
            ContainerNotFound, OutOfScope, ActionFailed.
        """
        return _manage.kill(self.engine, target, signal=signal, allow_foreign=allow_foreign,
                            journal=self.action_journal)

    def remove(self, target: str, *, force: bool = True, volumes: bool = False,
               allow_foreign: bool = False) -> list[ActionResult]:
        """``docker rm -f [-v] TARGET``; see :func:`opskit.act.manage.remove`.

        Args:
            target: a container name or ID, or a service (every replica).
            force: stop running containers first (``-f``); on by default.
            volumes: also remove anonymous volumes (``-v``); named volumes stay.
            allow_foreign: act on containers outside opskit's scope.

        Returns:
            One result per container.

        Raises:
            ContainerNotFound, OutOfScope, ActionFailed.
        """
        return _manage.remove(self.engine, target, force=force, volumes=volumes,
                              allow_foreign=allow_foreign, journal=self.action_journal)

    # -- observe -------------------------------------------------------------------------

    def inspect(self, target: str) -> ContainerInfo:
        """``docker inspect TARGET`` as a typed record; see :mod:`opskit.observe.inspection`.

        Args:
            target: a container name or ID, or a service of one replica.

        Returns:
            The container's state, health, limits, ports and networks.

        Raises:
            ContainerNotFound, InvalidTarget (a service of several replicas).
        """
        return _inspection.inspect_container(self.engine, target)

    def containers(self, *, all: bool = True) -> pd.DataFrame:
        """``docker ps -a`` as a DataFrame; see :func:`opskit.observe.listing.containers_frame`.

        Args:
            all: include stopped containers (``-a``).

        Returns:
            One row per container: id, name, service, image, state, health, exit_code, ...

        Raises:
            EngineUnavailable, EngineError.
        """
        return _listing.containers_frame(self.engine, all=all)

    def health(self, target: str) -> pd.DataFrame:
        """``docker inspect --format '{{json .State.Health}}' TARGET``, accumulated.

        The engine keeps five probes; this connection keeps every probe it has read.

        Args:
            target: a container name or ID, or a service.

        Returns:
            Probe times, exit code, outcome and redacted output, one row per probe.

        Raises:
            ContainerNotFound.
        """
        return self._health.read(self.engine, target)

    def stats(self, targets: str | Sequence[str] | None = None, *,
              timeout: float | None = None) -> pd.DataFrame:
        """``docker stats --no-stream [TARGET...]`` as a DataFrame, all at once (about 2 s).

        See :func:`opskit.observe.stats.stats_snapshot`.

        Args:
            targets: every running container when omitted, or a service, a container name or
                ID, or a list of them.
            timeout: seconds for the whole snapshot; the engine's timeout when omitted.

        Returns:
            One row per container, sorted by name (``cpu_pct`` is 100 for one busy CPU).

        Raises:
            ContainerNotFound: a target names nothing.
            EngineUnavailable, EngineError.
        """
        return _stats.stats_snapshot(self.engine, targets, timeout=timeout)

    def collector(self, interval: float = 1.0, path: str | Path | None = None, *,
                  max_rows: int = 1_000_000, targets: str | Sequence[str] | None = None,
                  relist_every: float = 1.0, flush_every: float = 30.0) -> Collector:
        """``docker stats`` continuously: a background sampler, not started (``.start()``).

        See :class:`opskit.observe.collector.Collector`.

        Args:
            interval: seconds between rows of a container (up to 1 keeps every sample).
            path: a folder to append Parquet files to; memory only when omitted.
            max_rows: the most rows held in memory; the oldest are dropped beyond.
            targets: every running container when omitted, or service names, container names
                or IDs, looked up at every re-list.
            relist_every: seconds between two ``docker ps`` calls.
            flush_every: seconds between two Parquet files.

        Returns:
            The collector (``frame()``, ``latest()``, ``stop()``).

        Raises:
            InvalidSpec: an argument is out of range.
        """
        return Collector(self.engine, interval=interval, path=path, max_rows=max_rows,
                         targets=targets, relist_every=relist_every, flush_every=flush_every)

    def events(self, since: datetime | str | float | None = "10m",
               until: datetime | str | float | None = None) -> pd.DataFrame:
        """``docker events --since SINCE --until UNTIL`` as a DataFrame.

        Rows come from this connection's event journal when it runs (else the host's journal
        file, when there is one) and from the engine's own replay of its last events; see
        :func:`opskit.observe.events.events_frame`.

        Args:
            since: a datetime, an ISO string, a Unix time or an age (``"10m"``).
            until: the same; the engine's clock now when omitted.

        Returns:
            One row per event, in time order.

        Raises:
            ValueError: ``since`` or ``until`` is not a time.
            EngineUnavailable, EngineError.
        """
        return _events.events_frame(self.engine, since, until, journal=self._journal)

    def journal(self, path: str | Path | None = None, *, stall_after: float = 5.0,
                fsync_every: float = 0.2,
                filters: Mapping[str, str | Sequence[str]] | None = None) -> EventJournal:
        """``docker events``, kept: the durable event journal of this engine, not started.

        Once it runs (``.start()``), :meth:`events` reads it and :meth:`watch` follows it;
        see :class:`opskit.observe.journal.EventJournal`.

        Args:
            path: the journal file; ``state_dir()/journal/<host>.jsonl`` when omitted. An
                existing journal is resumed.
            stall_after: seconds of silence after which the engine is pinged.
            fsync_every: seconds between two fsyncs of the file while records arrive.
            filters: the engine's event filters (``{"label": ["k=v"]}``).

        Returns:
            The journal (``start()``, ``stop()``, ``subscribe()``).
        """
        self._journal = EventJournal(self.engine, path, stall_after=stall_after,
                                     fsync_every=fsync_every, filters=filters)
        return self._journal

    def logs(self, target: str, *, since: datetime | str | float | None = None,
             until: datetime | str | float | None = None,
             tail: int | Literal["all"] | None = None, grep: str | None = None) -> pd.DataFrame:
        """``docker logs -t [--since] [--until] --tail N TARGET`` as a DataFrame.

        See :func:`opskit.observe.logs.read_logs`. Secrets in the lines are masked.

        Args:
            target: a container, an ID, or a service (replicas merged in time order).
            since, until: datetimes, ISO strings, Unix times, or ages such as ``"5m"``.
            tail: the last N lines of each container (counted before ``grep``); 10,000 when
                omitted; ``"all"`` for every line.
            grep: keep only lines matching this regular expression.

        Returns:
            Columns ts (UTC), container, stream, line; ``frame.attrs["truncated"]`` lists the
            containers whose older lines the tail left out.

        Raises:
            ContainerNotFound; InvalidTarget for a bad regex, time or tail.
        """
        return _logs.read_logs(self.engine, target, since=since, until=until, tail=tail,
                               grep=grep)

    def diagnose(self, target: str, *, rules: RuleConfig | None = None,
                 quarantined: set[str] | None = None, since: float = 600.0) -> list[Finding]:
        """Every detection rule and check on a service or container, most severe first.

        See :func:`opskit.recover.diagnose.diagnose`; failed actions come from this
        connection's action journal.

        Args:
            target: a service, container name or ID.
            rules: thresholds of the rules (defaults otherwise).
            quarantined: names a watchdog holds in quarantine.
            since: seconds of engine events to look at.

        Returns:
            The findings, most severe first.

        Raises:
            ContainerNotFound: nothing answers to ``target``.
        """
        return _diagnose.diagnose(self.engine, target, rules=rules, actions=self.action_journal,
                                  quarantined=quarantined, since=since)

    def watch(self, services: Sequence[str] | None = None, *,
              policy: RecoveryPolicy | Mapping[str, RecoveryPolicy] | None = None,
              rules: RuleConfig | None = None, specs: Mapping[str, ServiceSpec] | None = None,
              relist_every: float = 5.0, record_bundles: bool = True,
              alert: Callable[[Alert], None] | None = None) -> Watchdog:
        """A watchdog over services, not started: ``wd.start()``, ``wd.stop()``,
        ``wd.findings()``, ``wd.actions()``; see :class:`opskit.recover.watchdog.Watchdog`.

        Its actions go to this connection's action journal, and it reads this connection's
        event journal when one runs. It is given the specs this connection deployed (and any in
        ``specs``), so a spec's ``recovery`` policy holds for its service.

        Args:
            services: service names to watch; every opskit service of the scope when omitted.
            policy: a :class:`RecoveryPolicy`, or one per service name.
            rules: thresholds of the detection rules.
            specs: more service specs (over those this connection deployed).
            relist_every: seconds between re-lists (the pass over everything).
            record_bundles: record an incident bundle (:meth:`record`) into
                ``state_dir()/incidents/`` after each recovery.
            alert: called with an :class:`~opskit.recover.watchdog.Alert` when a person should
                know (quarantine, a container left down); it must return quickly.

        Returns:
            The watchdog.
        """
        journal = self._journal if self._journal is not None and self._journal.running else None
        recorder: BundleRecorder | None = self._record_incident if record_bundles else None
        return Watchdog(self.engine, services=services, policy=policy, rules=rules,
                        specs={**self.specs, **(specs or {})}, journal=journal,
                        actions=self.action_journal, relist_every=relist_every,
                        bundle_recorder=recorder, alert=alert)

    def _record_incident(self, watchdog: Watchdog, finding: Finding) -> str:
        """The watchdog's bundle recorder: an incident bundle around ``finding`` into
        ``incidents/``, recorded through this connection; its path."""
        from .analysis.bundle import watchdog_bundle  # loads pandas and pyarrow, when first used

        return watchdog_bundle(self, watchdog, finding)

    def chaos(self, kind: str, target: str, *, network: str | None = None,
              seconds: float = 2.0) -> Fault:
        """Inject a fault into one of opskit's containers; ``fault.undo()`` puts it back.

        The docker command of the kind: ``docker kill``, ``docker stop``, ``docker pause``,
        ``docker exec NAME make-unhealthy``, ``docker network disconnect``...; see
        :func:`opskit.act.chaos.inject`.

        Args:
            kind: one of :data:`opskit.act.chaos.FAULTS` (``crash``, ``kill``, ``stop``,
                ``pause``, ``unhealthy``, ``corrupt``, ``cpu``, ``oom``, ``delay``,
                ``disconnect``).
            target: a container name or ID, or a service of one replica.
            network: for ``disconnect``, the network to cut (the container's first otherwise).
            seconds: for ``delay``, how long the processes stay stopped (at most 600).

        Returns:
            The fault (``undo()``).

        Raises:
            InvalidTarget: unknown fault, or one this engine or container cannot take.
            InvalidSpec: ``seconds`` out of range.
            OutOfScope, ContainerNotFound, EngineError.
        """
        return _chaos.inject(self.engine, kind, target, journal=self.action_journal,
                             network=network, seconds=seconds)

    def chaos_residue(self) -> list[dict[str, object]]:
        """Faults whose injector died before undoing them; see :func:`opskit.act.chaos.residue`.

        Returns:
            The chaos ledger's entries still open on this scope's containers, each with
            ``state`` and ``still_in_place``; :func:`opskit.act.chaos.undo_residue` undoes one.
        """
        return list(_chaos.residue(self.engine))

    def record(self, name: str, services: Sequence[str] | None = None,
               since: datetime | str | float | None = "30m",
               until: datetime | str | float | None = None, *, around: Finding | None = None,
               margin: float | str | timedelta = "5m", path: str | Path | None = None,
               collector: Collector | None = None, watchdog: Watchdog | None = None,
               policy: RecoveryPolicy | None = None, logs_tail: int | None = 1000,
               max_bytes: int | None = BUNDLE_MAX_BYTES) -> Bundle:
        """Record an incident into one bundle file (``NAME.opsb``) and open it.

        See :func:`opskit.analysis.bundle.record`: containers, redacted inspections, events,
        logs, probes, stats, actions and findings of the chosen services over the range.

        Args:
            name: the incident's name; also the file name unless ``path`` is given.
            services: services (or container names); every opskit container of the scope
                when omitted.
            since, until: the time range (datetimes, ISO strings, Unix times, ages such as
                ``"30m"``); ``until`` is now on the engine's clock when omitted.
            around: a finding to record around instead: its service, ``margin`` either side.
            margin: seconds, or a duration such as ``"5m"``.
            path: where to write; ``NAME.opsb`` in the current folder by default.
            collector: a collector whose rows to include (else one stats snapshot).
            watchdog: a watchdog whose findings and status to include.
            policy: the recovery policy in force (the watchdog's when omitted).
            logs_tail: the most log lines per container (None: all in the range).
            max_bytes: the largest file allowed (100 MiB); None for no limit.

        Returns:
            The bundle, opened.

        Raises:
            InvalidSpec: ``since`` is not before ``until``.
            StorageError: the file could not be written or would exceed ``max_bytes``.
            EngineUnavailable, EngineError: the engine failed while reading.
        """
        from .analysis.bundle import record  # loads pandas and pyarrow

        return record(self, name, services, since, until, around=around, margin=margin,
                      path=path, collector=collector, watchdog=watchdog, policy=policy,
                      logs_tail=logs_tail, max_bytes=max_bytes)

    def actions(self) -> pd.DataFrame:
        """The action journal (manual and automatic actions) as a DataFrame.

        Returns:
            One row per action: ts, actor, action, container, result, reason, error, ...
        """
        return self.action_journal.frame()

    # -- communicate -------------------------------------------------------------------

    def exec(self, target: str, command: Sequence[str] | str, *, user: str | None = None,
             workdir: str | None = None, env: Mapping[str, str] | None = None,
             timeout: float | None = None, max_output: int | None = DEFAULT_MAX_OUTPUT,
             allow_foreign: bool = False) -> ExecResult:
        """``docker exec [-u USER] [-w DIR] [-e K=V] TARGET CMD...``.

        See :func:`opskit.act.execute.exec_run`. A string command runs through ``sh -c``.

        Args:
            target: a container name or ID, or a service of one replica.
            command: an argv list, or a shell string.
            user: as ``docker exec -u``.
            workdir: as ``docker exec -w``.
            env: as ``docker exec -e``.
            timeout: seconds to wait for the command; as long as it runs when omitted. At the
                deadline opskit raises, but the command may still run in the container.
            max_output: bytes kept of each stream (1 MiB); None keeps everything.
            allow_foreign: act on a container outside opskit's scope.

        Returns:
            Exit code, stdout and stderr (``truncated`` when a stream was cut).

        Raises:
            ContainerNotFound, OutOfScope, InvalidTarget (several replicas, an empty command,
            a bad timeout or max_output), EngineError (not running, no such program, past
            ``timeout``), EngineUnavailable.
        """
        return _execute.exec_run(self.engine, target, command, user=user, workdir=workdir,
                                 env=env, timeout=timeout, max_output=max_output,
                                 allow_foreign=allow_foreign)

    def copy_to(self, target: str, src: str | os.PathLike[str], dest: str, *,
                allow_foreign: bool = False) -> str:
        """``docker cp SRC TARGET:DEST``; see :func:`opskit.act.transfer.copy_to`.

        Args:
            target: a container name or ID, or a service of one replica.
            src: a local file or folder.
            dest: an absolute path in the container; an existing folder (or one ending with
                ``/``) receives the source under its own name.
            allow_foreign: act on a container outside opskit's scope.

        Returns:
            The path written in the container.

        Raises:
            CopyFailed: the source is missing, or the destination's folder does not exist.
            ContainerNotFound, OutOfScope, InvalidTarget, EngineError, EngineUnavailable.
        """
        return _transfer.copy_to(self.engine, target, src, dest, allow_foreign=allow_foreign)

    def copy_from(self, target: str, src: str, dest: str | os.PathLike[str], *,
                  max_bytes: int | None = DEFAULT_MAX_COPY_BYTES,
                  allow_foreign: bool = False) -> Path:
        """``docker cp TARGET:SRC DEST``; see :func:`opskit.act.transfer.copy_from`.

        Args:
            target: a container name or ID, or a service of one replica.
            src: a file or folder in the container.
            dest: a local path; an existing folder receives the copy inside it.
            max_bytes: the largest archive read (1 GiB); None for no limit.
            allow_foreign: copy from a container outside opskit's scope.

        Returns:
            The local path written.

        Raises:
            CopyFailed: missing source or local folder, too big, or an unsafe archive.
            InvalidTarget: ``max_bytes`` is not a positive whole number or None.
            ContainerNotFound, OutOfScope, EngineError, EngineUnavailable.
        """
        return _transfer.copy_from(self.engine, target, src, dest, max_bytes=max_bytes,
                                   allow_foreign=allow_foreign)

    def networks(self) -> list[NetworkInfo]:
        """``docker network ls``, each network inspected; see :func:`opskit.act.network.networks`.

        Returns:
            Every network on the engine.

        Raises:
            EngineUnavailable, EngineError.
        """
        return _network.networks(self.engine)

    def network_create(self, name: str, *, driver: str = "bridge", internal: bool = False,
                       subnet: str | None = None) -> NetworkInfo:
        """``docker network create [--driver D] [--internal] [--subnet S] NAME``.

        Idempotent: an existing network of that name is returned as it is; see
        :func:`opskit.act.network.network_create`.

        Args:
            name: the network's name.
            driver: the network driver.
            internal: no route outside the network.
            subnet: a CIDR such as ``10.42.0.0/24``.

        Returns:
            The network.

        Raises:
            InvalidSpec: a bad name or subnet (before any engine call).
            EngineUnavailable, EngineError.
        """
        return _network.network_create(self.engine, name, driver=driver, internal=internal,
                                       subnet=subnet)

    def network_connect(self, name: str, target: str, *, aliases: list[str] | None = None,
                        allow_foreign: bool = False) -> list[str]:
        """``docker network connect [--alias A] NAME TARGET``.

        See :func:`opskit.act.network.network_connect`.

        Args:
            name: the network's name or ID.
            target: a container name or ID, or a service (every replica).
            aliases: network-scoped aliases of the containers.
            allow_foreign: act on containers outside opskit's scope.

        Returns:
            The names of the containers connected (already connected ones included).

        Raises:
            NetworkNotFound, ContainerNotFound, OutOfScope, EngineError.
        """
        return _network.network_connect(self.engine, name, target, aliases=aliases,
                                        allow_foreign=allow_foreign)

    def network_disconnect(self, name: str, target: str, *, force: bool = False,
                           allow_foreign: bool = False) -> list[str]:
        """``docker network disconnect [-f] NAME TARGET``.

        See :func:`opskit.act.network.network_disconnect`.

        Args:
            name: the network's name or ID.
            target: a container name or ID, or a service (every replica).
            force: force the disconnect.
            allow_foreign: act on containers outside opskit's scope.

        Returns:
            The names of the containers disconnected (those not attached included).

        Raises:
            NetworkNotFound, ContainerNotFound, OutOfScope, EngineError.
        """
        return _network.network_disconnect(self.engine, name, target, force=force,
                                           allow_foreign=allow_foreign)

    def network_remove(self, name: str, *, missing_ok: bool = False,
                       allow_foreign: bool = False) -> None:
        """``docker network rm NAME``; see :func:`opskit.act.network.network_remove`.

        Args:
            name: the network's name or ID.
            missing_ok: return quietly when there is no such network.
            allow_foreign: remove a network opskit did not create in this scope.

        Raises:
            NetworkNotFound: no such network (unless ``missing_ok``).
            OutOfScope: the network is not opskit's (checked before any change).
            EngineError: the engine refused (containers are still attached).
        """
        _network.network_remove(self.engine, name, missing_ok=missing_ok,
                                allow_foreign=allow_foreign)


def as_spec(spec: ServiceSpec | Mapping[str, object] | str | Path) -> ServiceSpec:
    """A ServiceSpec from a spec, a mapping, or a YAML path or text."""
    if isinstance(spec, ServiceSpec):
        return spec
    if isinstance(spec, Mapping):
        return ServiceSpec.from_dict(spec)
    return ServiceSpec.from_yaml(spec)


if TYPE_CHECKING:

    def _ops_is_a_bundle_source(ops: Ops) -> None:
        """mypy proves :class:`Ops` satisfies both protocols of :mod:`opskit.analysis.bundle`:
        :func:`~opskit.analysis.bundle.analysis` reads it as a ``Source`` and
        :func:`~opskit.analysis.bundle.record` as a ``LiveSource``."""
        source: Source = ops
        live: LiveSource = ops
        del source, live

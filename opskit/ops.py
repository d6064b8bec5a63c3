"""The object a notebook user holds: ``ops = opskit.connect()``.

:class:`Ops` is a thin facade: each method is one line that calls the verb family's module
with the connection, so the modules stay usable (and testable) on their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from . import chaos, execute, images, inspection, listing, logs, manage, network, transfer
from . import deploy as _deploy
from .actions import ActionJournal
from .engine import DEFAULT_TIMEOUT, Engine, open_engine
from .health import HealthHistory
from .spec import ServiceSpec

__all__ = ["Ops", "connect"]


def connect(url: str | None = None, *, scope: str = "default", timeout: float = DEFAULT_TIMEOUT,
            tls: Any = None) -> Ops:
    """Connect to a Docker engine, chosen as the ``docker`` CLI does: ``url``, else
    ``DOCKER_HOST``, else ``DOCKER_CONTEXT``, else the CLI's current context, else the local
    socket.

    Args:
        url: ``unix:///var/run/docker.sock``, ``tcp://host:2376`` (TLS required unless
            loopback) or ``ssh://user@host``.
        scope: opskit acts only on containers it created in this scope.
        timeout: seconds for each non-streaming call.
        tls: a ``docker.tls.TLSConfig`` for ``tcp://``.

    Raises:
        EngineUnavailable: nothing answered (the message names the host).
        InsecureEngine: a remote ``tcp://`` engine without TLS verification.
    """
    return Ops(open_engine(url, scope=scope, timeout=timeout, tls=tls))


class Ops:
    """Operations on one engine. Build it with :func:`connect`."""

    def __init__(self, engine: Engine, *, journal: ActionJournal | None = None) -> None:
        self.engine = engine
        self.action_journal = journal or ActionJournal(host=engine.host)
        self._health = HealthHistory()
        self._journal: Any = None
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

    def demo_images(self, *, progress: Callable[..., None] | None = None,
                    force: bool = False) -> list[str]:
        """Build opskit's demo images offline; see :func:`opskit.images.demo_images`."""
        return images.demo_images(self.engine, progress=progress, force=force)

    def build(self, path: str | Path, *, tag: str, dockerfile: str | None = None,
              buildargs: Mapping[str, str] | None = None,
              progress: Callable[..., None] | None = None) -> images.BuildResult:
        """``docker build -t TAG PATH``; see :func:`opskit.images.build`."""
        return images.build(self.engine, path, tag=tag, dockerfile=dockerfile,
                            buildargs=dict(buildargs or {}), progress=progress)

    def deploy(self, spec: ServiceSpec | Mapping[str, Any] | str | Path, *,
               wait: str | None = "healthy", timeout: float = 60.0,
               progress: Callable[[str], None] | None = None) -> _deploy.Deployment:
        """Deploy a spec, a mapping, or a YAML path; see :func:`opskit.deploy.deploy`."""
        parsed = as_spec(spec)
        result = _deploy.deploy(self.engine, parsed, wait=wait, timeout=timeout,
                                progress=progress)
        self.specs[parsed.name] = parsed
        return result

    def teardown(self, service: str, *, volumes: bool = False) -> list[str]:
        """Remove a service and what deploy made for it; see :func:`opskit.deploy.teardown`."""
        removed = _deploy.teardown(self.engine, service, volumes=volumes)
        self.specs.pop(service, None)
        return removed

    # -- manage ------------------------------------------------------------------------

    def start(self, target: str, **kw: Any) -> list[manage.ActionResult]:
        """``docker start TARGET``."""
        return manage.start(self.engine, target, journal=self.action_journal, **kw)

    def stop(self, target: str, *, timeout: float | None = None, **kw: Any
             ) -> list[manage.ActionResult]:
        """``docker stop -t TIMEOUT TARGET``."""
        return manage.stop(self.engine, target, timeout=timeout, journal=self.action_journal, **kw)

    def restart(self, target: str, *, timeout: float | None = None, **kw: Any
                ) -> list[manage.ActionResult]:
        """``docker restart -t TIMEOUT TARGET``."""
        return manage.restart(self.engine, target, timeout=timeout, journal=self.action_journal,
                               **kw)

    def pause(self, target: str, **kw: Any) -> list[manage.ActionResult]:
        """``docker pause TARGET``."""
        return manage.pause(self.engine, target, journal=self.action_journal, **kw)

    def unpause(self, target: str, **kw: Any) -> list[manage.ActionResult]:
        """``docker unpause TARGET``."""
        return manage.unpause(self.engine, target, journal=self.action_journal, **kw)

    def kill(self, target: str, *, signal: str = "SIGKILL", **kw: Any
             ) -> list[manage.ActionResult]:
        """``docker kill -s SIGNAL TARGET``."""
        return manage.kill(self.engine, target, signal=signal, journal=self.action_journal, **kw)

    def remove(self, target: str, *, force: bool = True, **kw: Any) -> list[manage.ActionResult]:
        """``docker rm -f TARGET``."""
        return manage.remove(self.engine, target, force=force, journal=self.action_journal, **kw)

    # -- observe -------------------------------------------------------------------------

    def inspect(self, target: str) -> inspection.ContainerInfo:
        """``docker inspect TARGET`` as a typed record; see :mod:`opskit.inspection`."""
        return inspection.inspect_container(self.engine, target)

    def containers(self, *, all: bool = True) -> Any:
        """``docker ps -a`` as a DataFrame; see :func:`opskit.listing.containers_frame`."""
        return listing.containers_frame(self.engine, all=all)

    def health(self, target: str) -> Any:
        """Healthcheck history (probe times, exit code, outcome, redacted output) as a DataFrame.

        The engine keeps five probes; this connection keeps every probe it has read.
        """
        return self._health.read(self.engine, target)

    def stats(self, targets: Any = None, *, timeout: float | None = None) -> Any:
        """``docker stats --no-stream`` as a DataFrame, all containers at once (about 2 s).

        See :func:`opskit.stats.stats_snapshot`.
        """
        from . import stats

        return stats.stats_snapshot(self.engine, targets, timeout=timeout)

    def collector(self, interval: float = 1.0, path: str | Path | None = None,
                  **kw: Any) -> Any:
        """A background stats sampler (not started); see :class:`opskit.collector.Collector`."""
        from .collector import Collector

        return Collector(self.engine, interval=interval, path=path, **kw)

    def events(self, since: Any = "10m", until: Any = None) -> Any:
        """Engine events as a DataFrame, from opskit's journal and the engine's own replay.

        See :func:`opskit.events.events_frame` (``docker events --since --until``).
        """
        from . import events

        return events.events_frame(self.engine, since, until, journal=self._journal)

    def journal(self, path: str | Path | None = None, **kw: Any) -> Any:
        """The durable event journal of this engine (not started); see
        :class:`opskit.journal.EventJournal`. ``ops.events()`` reads it once it runs."""
        from .journal import EventJournal

        self._journal = EventJournal(self.engine, path, **kw)
        return self._journal

    def logs(self, target: str, *, since: Any = None, until: Any = None,
             tail: int | Literal["all"] | None = None, grep: str | None = None) -> Any:
        """``docker logs -t TARGET`` as a DataFrame, the last 10,000 lines of each container
        unless ``tail="all"``; see :func:`opskit.logs.read_logs`."""
        return logs.read_logs(self.engine, target, since=since, until=until, tail=tail,
                              grep=grep)

    def diagnose(self, target: str, **kw: Any) -> list[Any]:
        """Every detection rule and check on a service or container, most severe first; see
        :func:`opskit.diagnose.diagnose`."""
        from .diagnose import diagnose

        return diagnose(self.engine, target, actions=self.action_journal, **kw)

    def watch(self, services: Sequence[str] | None = None, *, policy: Any = None,
              **kw: Any) -> Any:
        """A watchdog over services (not started): ``wd.start()``, ``wd.stop()``,
        ``wd.findings()``, ``wd.actions()``; see :class:`opskit.watchdog.Watchdog`.

        Its actions go to this connection's action journal, and it reads this connection's
        event journal when one runs. It is given the specs this connection deployed (and any in
        ``specs=``), so a spec's ``recovery`` policy holds for its service.
        """
        from .watchdog import Watchdog

        journal = self._journal if self._journal is not None and self._journal.running else None
        specs = {**self.specs, **dict(kw.pop("specs", None) or {})}
        return Watchdog(self.engine, services=services, policy=policy, journal=journal,
                        actions=self.action_journal, specs=specs, **kw)

    def chaos(self, kind: str, target: str, *, network: str | None = None,
              seconds: float = 2.0) -> chaos.Fault:
        """Inject a fault into one of opskit's containers; ``fault.undo()`` puts it back.

        See :mod:`opskit.chaos` for the kinds (``network`` for ``disconnect``, ``seconds`` for
        ``delay``).
        """
        return chaos.inject(self.engine, kind, target, journal=self.action_journal,
                            network=network, seconds=seconds)

    def chaos_residue(self) -> list[dict[str, Any]]:
        """Faults whose injector died before undoing them; see :func:`opskit.chaos.residue`."""
        return chaos.residue(self.engine)

    def record(self, name: str, services: Sequence[str] | None = None, since: Any = "30m",
               until: Any = None, **kw: Any) -> Any:
        """Record an incident into one bundle file (``NAME.opsb``) and open it; see
        :func:`opskit.bundle.record` (``around=``, ``collector=``, ``watchdog=``,
        ``max_bytes=``, ...)."""
        from .bundle import record

        return record(self, name, services, since, until, **kw)

    def actions(self) -> Any:
        """The action journal (manual and automatic actions) as a DataFrame."""
        return self.action_journal.frame()

    # -- communicate -------------------------------------------------------------------

    def exec(self, target: str, command: Sequence[str] | str, **kw: Any) -> execute.ExecResult:
        """``docker exec TARGET CMD...``; see :func:`opskit.execute.exec_run`."""
        return execute.exec_run(self.engine, target, command, **kw)

    def copy_to(self, target: str, src: str | Path, dest: str, **kw: Any) -> str:
        """``docker cp SRC TARGET:DEST``."""
        return transfer.copy_to(self.engine, target, src, dest, **kw)

    def copy_from(self, target: str, src: str, dest: str | Path, **kw: Any) -> Path:
        """``docker cp TARGET:SRC DEST``."""
        return transfer.copy_from(self.engine, target, src, dest, **kw)

    def networks(self) -> list[network.NetworkInfo]:
        """``docker network ls``."""
        return network.networks(self.engine)

    def network_create(self, name: str, **kw: Any) -> network.NetworkInfo:
        """``docker network create NAME``."""
        return network.network_create(self.engine, name, **kw)

    def network_connect(self, name: str, target: str, **kw: Any) -> list[str]:
        """``docker network connect NAME TARGET``."""
        return network.network_connect(self.engine, name, target, **kw)

    def network_disconnect(self, name: str, target: str, **kw: Any) -> list[str]:
        """``docker network disconnect NAME TARGET``."""
        return network.network_disconnect(self.engine, name, target, **kw)

    def network_remove(self, name: str, **kw: Any) -> None:
        """``docker network rm NAME``."""
        network.network_remove(self.engine, name, **kw)


def as_spec(spec: ServiceSpec | Mapping[str, Any] | str | Path) -> ServiceSpec:
    """A ServiceSpec from a spec, a mapping, or a YAML path or text."""
    if isinstance(spec, ServiceSpec):
        return spec
    if isinstance(spec, Mapping):
        return ServiceSpec.from_dict(spec)
    return ServiceSpec.from_yaml(spec)

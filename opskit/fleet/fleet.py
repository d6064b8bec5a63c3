"""A fleet: several engines, each an :class:`opskit.Ops`, read as one.

    fleet = opskit.connect_fleet({"local": "unix:///var/run/docker.sock", "edge": "edge-ctx"})
    fleet.status()          # one row per engine: reachable, version, containers, why not
    fleet.containers()      # docker ps -a on every engine at once, an ``engine`` column first
    fleet["edge"].restart("web")

Reads fan out in parallel with a deadline per engine (:func:`~opskit.fleet.fanout.fan_out`): an
engine that is down, stopped or black-holed adds at most the deadline, its rows are missing,
and :attr:`Fleet.last` (also ``frame.attrs["engines"]``) says why in its row.
"""

from __future__ import annotations

import functools
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ..act.deploy import Deployment
from ..act.manage import VERBS, ActionResult
from ..base import labels as L
from ..base.errors import (
    ContainerNotFound,
    EngineUnavailable,
    FleetFailed,
    InsecureEngine,
    InvalidSpec,
    InvalidTarget,
)
from ..engine.connection import DEFAULT_TIMEOUT, check_scope, open_engine
from ..ops import Ops, TLSConfig, as_spec
from ..recover.rules import RuleConfig
from ..spec.policy import RecoveryPolicy
from ..spec.service import ServiceSpec
from .fanout import Outcome, fan_out
from .supervisor import EngineAlert, Supervisor

if TYPE_CHECKING:
    import pandas as pd

    from ..analysis.bundle import Bundle

__all__ = ["DEFAULT_DEADLINE", "STATUS_COLUMNS", "Fleet", "connect_fleet"]

DEFAULT_DEADLINE = 5.0
"""Seconds a fleet read waits for each engine before reporting it as not answering."""
STATUS_COLUMNS = ["engine", "host", "reachable", "seconds", "rows", "error"]
T = TypeVar("T")
Since = datetime | str | float | None


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
"""An engine's name in a fleet: also a file name (its part of a bundle), so no path in it."""


def _is_url(address: str | None) -> bool:
    return address is None or "://" in address or address.startswith("/")


def connect_fleet(engines: Mapping[str, str | None] | Sequence[str], *, scope: str = "default",
                  timeout: float = DEFAULT_TIMEOUT, deadline: float = DEFAULT_DEADLINE,
                  tls: Mapping[str, TLSConfig] | None = None) -> Fleet:
    """Connect to several engines at once: ``docker --context NAME`` or ``-H URL`` for each.

    Args:
        engines: name -> address, or a list of docker context names (each its own name). An
            address is an engine URL (``unix://``, ``ssh://``, ``tcp://`` with TLS), a docker
            context name, or None for the engine ``docker`` would use (``DOCKER_HOST``...).
        scope: the opskit scope, the same on every engine.
        timeout: seconds for each non-streaming call to one engine.
        deadline: seconds to wait for each engine, when connecting and on every read.
        tls: a ``docker.tls.TLSConfig`` per engine name, for ``tcp://`` URLs.

    Returns:
        The fleet. An engine that could not be reached is in it, unreachable, with the reason
        (:meth:`Fleet.status`); :meth:`Fleet.reconnect` tries it again.

    Raises:
        InvalidSpec: no engine, a name used twice, or a bad scope (nothing was connected).
        InsecureEngine: a remote ``tcp://`` engine without TLS verification (nothing is left
            connected).
        InvalidTarget: an address that is neither an engine URL nor a docker context.
    """
    named: dict[str, str | None] = (dict(engines) if isinstance(engines, Mapping)
                                    else {n: n for n in engines})
    if not named:
        raise InvalidSpec("engines", "is empty", allowed="a mapping of name to URL or context")
    if not isinstance(engines, Mapping) and len(named) != len(engines):
        raise InvalidSpec("engines", "names an engine twice", value=list(engines))
    for name in named:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise InvalidSpec("engines", f"has an engine named {name!r}", value=name,
                              allowed="letters, digits and _ . + - (a docker context's name "
                              "rules), at most 64")
    check_scope(scope)
    fleet = Fleet(named, scope=scope, timeout=timeout, deadline=deadline, tls=tls)
    fleet.reconnect()
    return fleet


class Fleet:
    """Several engines, each an :class:`opskit.Ops`; build one with :func:`connect_fleet`.

    ``fleet["name"]`` is that engine's :class:`~opskit.Ops` (every verb of one engine);
    ``fleet.containers()``, ``stats()``, ``events()``, ``logs()`` and ``actions()`` read every
    reachable engine at once and return one frame with an ``engine`` column.
    """

    def __init__(self, addresses: Mapping[str, str | None], *, scope: str = "default",
                 timeout: float = DEFAULT_TIMEOUT, deadline: float = DEFAULT_DEADLINE,
                 tls: Mapping[str, TLSConfig] | None = None) -> None:
        self.addresses = dict(addresses)
        self.scope = scope
        self.timeout = timeout
        self.deadline = deadline
        self._tls = dict(tls or {})
        self._members: dict[str, Ops] = {}
        self._down: dict[str, str] = {name: "not connected yet" for name in self.addresses}
        self._lock = threading.Lock()  # the supervisor reconnects while notebooks read
        self.last: pd.DataFrame | None = None
        """The status of the last fleet read: one row per engine (:data:`STATUS_COLUMNS`)."""

    def __repr__(self) -> str:
        up = ", ".join(self.reachable) or "none"
        return f"<opskit.Fleet {len(self.addresses)} engines, reachable: {up}>"

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[str]:
        return iter(self.addresses)

    def __len__(self) -> int:
        return len(self.addresses)

    def __getitem__(self, name: str) -> Ops:
        """That engine's :class:`~opskit.Ops`.

        Raises:
            InvalidTarget: no engine of that name in the fleet.
            EngineUnavailable: the engine could not be reached (the reason is in the message).
        """
        if name not in self.addresses:
            raise InvalidTarget(name, "is not an engine of this fleet",
                                hint=f"the fleet's engines are {', '.join(self)}.")
        with self._lock:
            ops = self._members.get(name)
        if ops is None:
            raise EngineUnavailable(self._host(name), self._down.get(name, "not connected"))
        return ops

    @property
    def reachable(self) -> list[str]:
        """The names of the engines connected."""
        with self._lock:
            return [name for name in self.addresses if name in self._members]

    def reconnect(self) -> dict[str, str]:
        """Connect to every engine not connected yet, at once, within the deadline.

        Returns:
            Why each engine still unreachable is (name -> reason); empty when all are.

        Raises:
            InsecureEngine: a remote ``tcp://`` engine without TLS verification.
            InvalidTarget: an address that is neither an engine URL nor a docker context.
            (Both are mistakes to fix, not outages to wait out: no engine is left connected.)
        """
        missing = [name for name in self.addresses if name not in self.reachable]
        outcomes = fan_out({name: self._opener(name) for name in missing}, self.deadline)
        with self._lock:
            for name, outcome in outcomes.items():
                if outcome.ok and outcome.value is not None:
                    self._members[name] = outcome.value
                    self._down.pop(name, None)
                else:
                    self._down[name] = outcome.error
        refused = [o.exception for o in outcomes.values()
                   if isinstance(o.exception, InsecureEngine | InvalidTarget)]
        if refused:
            self.close()
            raise refused[0]
        return dict(self._down)

    def _opener(self, name: str) -> Callable[[], Ops]:
        address, tls = self.addresses[name], self._tls.get(name)

        def open_one() -> Ops:
            engine = open_engine(address if _is_url(address) else None, scope=self.scope,
                                 timeout=self.timeout, tls=tls,
                                 context=None if _is_url(address) else address)
            return Ops(engine)

        return open_one

    def close(self) -> None:
        """Close every connection and its action journal."""
        with self._lock:
            members = list(self._members.values())
            self._members.clear()
        for ops in members:
            ops.close()

    # -- choosing engines --------------------------------------------------------------------

    def select(self, engines: Sequence[str] | None = None,
               labels: Mapping[str, str] | None = None) -> list[str]:
        """The engines named, or (``labels``) those whose engine labels (``dockerd --label``,
        ``docker info``) carry every ``key=value`` given; all engines when neither is.

        Raises:
            InvalidTarget: a name that is not an engine of the fleet.
            EngineUnavailable: ``labels`` given and an engine cannot be asked for its labels
                (it might match: nothing is done rather than half of it).
        """
        chosen = list(self.addresses) if engines is None else list(dict.fromkeys(engines))
        for name in chosen:
            if name not in self.addresses:
                raise InvalidTarget(name, "is not an engine of this fleet",
                                    hint=f"the fleet's engines are {', '.join(self)}.")
        if not labels:
            return chosen
        outcomes = self._each(lambda ops: ops.engine.api.info(), only=chosen)
        matched = []
        for name in chosen:
            outcome = outcomes.get(name)
            if outcome is None or not outcome.ok or outcome.value is None:
                why = outcome.error if outcome is not None else self._down.get(name, "")
                raise EngineUnavailable(self._host(name), f"its labels could not be read: {why}")
            have = dict(str(item).partition("=")[::2] for item in outcome.value.get("Labels")
                        or [])
            if all(have.get(key) == value for key, value in labels.items()):
                matched.append(name)
        return matched

    # -- deploy -------------------------------------------------------------------------------

    def deploy(self, spec: ServiceSpec | Mapping[str, object] | str | Path, *,
               engines: Sequence[str] | None = None, labels: Mapping[str, str] | None = None,
               wait: str | None = "healthy", timeout: float = 60.0) -> dict[str, Deployment]:
        """Deploy one spec to several engines at once: :meth:`opskit.Ops.deploy` on each.

        Each engine's deploy is idempotent and rolls back its own failure, as on one engine.

        Args:
            spec: a spec, a mapping, or a YAML path or text.
            engines: the engines to deploy to (all by default); ``labels`` selects them by
                their engine labels instead (see :meth:`select`).
            wait: ``"healthy"``, ``"running"`` or None, as for one engine.
            timeout: seconds each engine's deploy may take.

        Returns:
            Each engine's :class:`~opskit.act.deploy.Deployment`, by engine name.

        Raises:
            InvalidSpec: the spec is invalid (checked once, before any engine is touched).
            InvalidTarget, EngineUnavailable: as :meth:`select`; or a chosen engine is not
                reachable (nothing is deployed anywhere).
            FleetFailed: the deploy failed on some engines; ``exc.outcomes`` has each one's
                result (the others keep theirs).
        """
        parsed = as_spec(spec)
        chosen = self._reachable(self.select(engines, labels), f"deploy of {parsed.name}")
        outcomes = fan_out({name: functools.partial(self[name].deploy, parsed,
                                                    wait=wait, timeout=timeout)
                            for name in chosen}, timeout + self.timeout)
        return self._all_or_raise(f"deploy of {parsed.name}", outcomes)

    def teardown(self, service: str, *, engines: Sequence[str] | None = None,
                 labels: Mapping[str, str] | None = None,
                 volumes: bool = False) -> dict[str, list[str]]:
        """``opskit teardown SERVICE`` on several engines at once (all by default).

        Returns:
            What was removed on each engine, by engine name.

        Raises:
            InvalidTarget, EngineUnavailable: as :meth:`deploy`.
            FleetFailed: the teardown failed on some engines; ``exc.outcomes`` says which.
        """
        chosen = self._reachable(self.select(engines, labels), f"teardown of {service}")
        outcomes = fan_out({name: functools.partial(self[name].teardown, service,
                                                    volumes=volumes)
                            for name in chosen}, 4 * self.timeout)
        return self._all_or_raise(f"teardown of {service}", outcomes)

    # -- manage -------------------------------------------------------------------------------

    def lifecycle(self, verb: str, target: str, *, engines: Sequence[str] | None = None,
                  timeout: float | None = None, signal: str = "SIGKILL",
                  allow_foreign: bool = False) -> dict[str, list[ActionResult]]:
        """``docker VERB TARGET`` on every chosen engine that has ``target``, at once.

        Args:
            verb: one of :data:`opskit.act.manage.VERBS` (``restart``, ``stop``...).
            target: a container name or ID, or a service (every replica on each engine).
            engines: the engines to act on (every reachable one by default).
            timeout, signal, allow_foreign: as :meth:`opskit.Ops.lifecycle`.

        Returns:
            Each engine's results, by engine name; engines where nothing answers to ``target``
            are left out.

        Raises:
            InvalidSpec: not a life-cycle verb (nothing was done).
            ContainerNotFound: no chosen engine has ``target``.
            FleetFailed: the action failed on some engines (``exc.outcomes`` has each one's).
        """
        if verb not in VERBS:
            raise InvalidSpec("verb", "is not a life-cycle verb", allowed=", ".join(VERBS),
                              value=verb)
        chosen = self._reachable(self.select(engines) if engines else self.reachable,
                                 f"{verb} of {target}")
        outcomes = fan_out({name: functools.partial(
            self[name].lifecycle, verb, target, timeout=timeout, signal=signal,
            allow_foreign=allow_foreign) for name in chosen},
            (timeout or 10.0) + 4 * self.timeout)
        found = {name: o for name, o in outcomes.items()
                 if not isinstance(o.exception, ContainerNotFound)}
        if not found:
            raise ContainerNotFound(target, ", ".join(chosen) or "no reachable engine")
        return self._all_or_raise(f"{verb} of {target}", found)

    def restart(self, target: str, *, engines: Sequence[str] | None = None,
                timeout: float | None = None) -> dict[str, list[ActionResult]]:
        """``docker restart TARGET`` on every chosen engine that has it; see :meth:`lifecycle`."""
        return self.lifecycle("restart", target, engines=engines, timeout=timeout)

    def stop(self, target: str, *, engines: Sequence[str] | None = None,
             timeout: float | None = None) -> dict[str, list[ActionResult]]:
        """``docker stop TARGET`` on every chosen engine that has it; see :meth:`lifecycle`."""
        return self.lifecycle("stop", target, engines=engines, timeout=timeout)

    def start(self, target: str, *, engines: Sequence[str] | None = None
              ) -> dict[str, list[ActionResult]]:
        """``docker start TARGET`` on every chosen engine that has it; see :meth:`lifecycle`."""
        return self.lifecycle("start", target, engines=engines)

    # -- recovery -----------------------------------------------------------------------------

    def watch(self, services: Sequence[str] | None = None, *,
              engines: Sequence[str] | None = None,
              policy: RecoveryPolicy | Mapping[str, RecoveryPolicy] | None = None,
              rules: RuleConfig | None = None, specs: Mapping[str, ServiceSpec] | None = None,
              relist_every: float = 5.0, record_bundles: bool = True,
              alert: Callable[[EngineAlert], None] | None = None,
              retry_every: float = 10.0) -> Supervisor:
        """A watchdog per engine under one supervisor, not started: ``sup.start()``.

        Each engine's watchdog is :meth:`opskit.Ops.watch` on that engine, with the arguments
        given here; an engine unreachable at the start is tried every ``retry_every`` seconds
        and watched from when it answers. See :class:`~opskit.fleet.supervisor.Supervisor`.

        Raises:
            InvalidTarget: an engine not in the fleet.
        """
        return Supervisor(self, services, engines=engines, policy=policy, rules=rules,
                          specs=specs, relist_every=relist_every, record_bundles=record_bundles,
                          alert=alert, retry_every=retry_every)

    # -- incidents ----------------------------------------------------------------------------

    def record(self, name: str, services: Sequence[str] | None = None, since: Since = "30m",
               until: Since = None, *, engines: Sequence[str] | None = None,
               path: str | Path | None = None, supervisor: Supervisor | None = None,
               logs_tail: int | None = 1000) -> Bundle:
        """Record an incident across engines into one bundle file (``NAME.opsb``) and open it.

        Each engine's part is :meth:`opskit.Ops.record` on that engine, all at once; every
        table of the bundle gains an ``engine`` column (see
        :func:`~opskit.analysis.combine.combine_bundles`). An engine that cannot be read is
        named in the manifest's notes, not waited for beyond ``timeout`` x 6.

        Args:
            name, services, since, until, logs_tail: as :meth:`opskit.Ops.record`.
            engines: the engines to record (every reachable one by default).
            path: where to write; ``NAME.opsb`` in the current folder by default.
            supervisor: a :meth:`watch` supervisor whose watchdogs' findings to include.

        Raises:
            InvalidTarget: an engine not in the fleet (nothing was recorded).
            FleetFailed: no engine could be recorded (each one's reason is in it).
            StorageError: the file could not be written.
        """
        from ..analysis.combine import combine_bundles  # loads pandas and pyarrow

        up = self.reachable
        chosen = [n for n in (self.select(engines) if engines else up) if n in up]
        target = Path(path) if path is not None else Path(f"{name}.opsb")
        with tempfile.TemporaryDirectory(prefix="opskit-fleet-") as parts:
            def one(engine: str) -> Bundle:
                watchdog = supervisor.watchdogs.get(engine) if supervisor else None
                return self[engine].record(
                    f"{name}-{engine}", services, since, until, watchdog=watchdog,
                    path=Path(parts) / f"{engine}.opsb", logs_tail=logs_tail)

            outcomes = fan_out({e: functools.partial(one, e) for e in chosen}, 6 * self.timeout)
            recorded = {e: o.value for e, o in outcomes.items() if o.ok and o.value is not None}
            if not recorded:
                raise FleetFailed(f"record of {name}", outcomes)
            notes = [f"engine {e} not recorded: {o.error}" for e, o in outcomes.items()
                     if not o.ok]
            notes += [f"engine {e} not recorded: not reachable ({self._down.get(e)})"
                      for e in (engines or self.addresses) if e not in up]
            return combine_bundles(recorded, name, target, notes=notes)

    def _reachable(self, chosen: list[str], what: str) -> list[str]:
        up = self.reachable
        for name in chosen:
            if name not in up:
                raise EngineUnavailable(self._host(name), f"{what} not started on any engine: "
                                        f"this one is not reachable ({self._down.get(name)})")
        return chosen

    @staticmethod
    def _all_or_raise(what: str, outcomes: Mapping[str, Outcome[T]]) -> dict[str, T]:
        if any(not o.ok or o.value is None for o in outcomes.values()):
            raise FleetFailed(what, outcomes)
        return {name: o.value for name, o in outcomes.items() if o.value is not None}

    # -- reads ------------------------------------------------------------------------------

    def status(self) -> pd.DataFrame:
        """One row per engine: ``docker info`` of each at once (reachable, version, running,
        paused and stopped containers), and why an engine is not reachable."""
        import pandas as pd

        outcomes = self._each(lambda ops: ops.engine.api.info())
        rows = []
        for name in self.addresses:
            outcome = outcomes.get(name)
            info = outcome.value if outcome is not None and outcome.ok else None
            rows.append({
                "engine": name, "host": self._host(name), "reachable": info is not None,
                "version": (info or {}).get("ServerVersion"),
                "running": (info or {}).get("ContainersRunning"),
                "paused": (info or {}).get("ContainersPaused"),
                "stopped": (info or {}).get("ContainersStopped"),
                "seconds": outcome.seconds if outcome is not None else None,
                "error": outcome.error if outcome is not None else self._down.get(name, "")})
        frame = pd.DataFrame(rows)
        frame["engine"] = frame["engine"].astype("category")
        return frame

    def overview(self) -> pd.DataFrame:
        """The fleet at a glance, one row per engine: reachable, version, and its containers
        running, unhealthy and exited, with how many services of this fleet's scope run there
        (from ``docker ps -a`` of every engine at once); why an engine is missing."""
        import pandas as pd

        frame = self.containers()
        status = self.last if self.last is not None else pd.DataFrame(columns=STATUS_COLUMNS)
        wanted = {"label": [f"{L.MANAGED}=true", f"{L.SCOPE}={self.scope}"],
                  "status": "running"}
        services = {name: {str((c.get("Labels") or {}).get(L.SERVICE, "")) for c in o.value}
                    for name, o in self._each(
                        lambda ops: ops.engine.api.containers(filters=wanted)).items()
                    if o.ok and o.value is not None}
        with self._lock:
            members = dict(self._members)
        rows = []
        for name, row in zip(status["engine"], status.itertuples(index=False), strict=True):
            mine = frame[frame["engine"].astype(str) == name]
            state, health = mine["state"].astype(str), mine["health"].astype(str)
            version = members[name].engine.info.get("Version") if name in members else None
            rows.append({"engine": name, "host": row.host, "reachable": bool(row.reachable),
                         "version": version, "running": int((state == "running").sum()),
                         "unhealthy": int((health == "unhealthy").sum()),
                         "exited": int((state == "exited").sum()),
                         "services": len(services.get(name, set()) - {""}),
                         "error": row.error})
        out = pd.DataFrame(rows)
        if len(out):
            out["engine"] = pd.Categorical(out["engine"], categories=list(self.addresses))
        return out

    def containers(self, *, all: bool = True) -> pd.DataFrame:
        """``docker ps -a`` on every engine at once, an ``engine`` column first."""
        return self._frame(lambda ops: ops.containers(all=all))

    def stats(self, targets: str | Sequence[str] | None = None) -> pd.DataFrame:
        """``docker stats --no-stream`` on every engine at once, an ``engine`` column first."""
        return self._frame(lambda ops: ops.stats(targets))

    def events(self, since: Since = "10m", until: Since = None) -> pd.DataFrame:
        """``docker events --since --until`` on every engine, merged by time, ``engine`` first."""
        frame = self._frame(lambda ops: ops.events(since, until))
        if "time_nano" in frame:
            frame = frame.sort_values("time_nano", kind="stable").reset_index(drop=True)
        return frame

    def logs(self, target: str, *, since: Since = None, until: Since = None,
             tail: int | None = None, grep: str | None = None) -> pd.DataFrame:
        """``docker logs -t TARGET`` on every engine that has ``target``, ``engine`` first.

        An engine where no container answers to ``target`` contributes no rows (its status
        row says so)."""
        return self._frame(lambda ops: ops.logs(target, since=since, until=until, tail=tail,
                                                grep=grep))

    def actions(self) -> pd.DataFrame:
        """Every engine's action journal as one frame, ``engine`` first, by time."""
        frame = self._frame(lambda ops: ops.actions())
        if "ts" in frame:
            frame = frame.sort_values("ts", kind="stable").reset_index(drop=True)
        return frame

    # -- the fan-out ------------------------------------------------------------------------

    def _each(self, call: Callable[[Ops], T], only: Sequence[str] | None = None
              ) -> dict[str, Outcome[T]]:
        with self._lock:
            members = dict(self._members)
        calls: dict[str, Callable[[], T]] = {
            name: functools.partial(call, ops) for name, ops in members.items()
            if only is None or name in only}
        return fan_out(calls, self.deadline)

    def _frame(self, call: Callable[[Ops], pd.DataFrame]) -> pd.DataFrame:
        import pandas as pd

        outcomes = self._each(call)
        frames = []
        status = []
        for name in self.addresses:
            outcome = outcomes.get(name)
            if outcome is not None and outcome.ok and outcome.value is not None:
                frame = outcome.value.copy()
                frame.insert(0, "engine", name)
                frames.append(frame)
            status.append({"engine": name, "host": self._host(name),
                           "reachable": outcome is not None and outcome.ok,
                           "seconds": outcome.seconds if outcome is not None else None,
                           "rows": len(outcome.value) if outcome is not None and outcome.ok
                           and outcome.value is not None else 0,
                           "error": outcome.error if outcome is not None
                           else self._down.get(name, "")})
        merged = _concat(frames)
        merged["engine"] = pd.Categorical(merged["engine"], categories=list(self.addresses))
        self.last = pd.DataFrame(status, columns=STATUS_COLUMNS)
        merged.attrs["engines"] = status
        return merged

    def _host(self, name: str) -> str:
        with self._lock:
            ops = self._members.get(name)
        if ops is not None:
            return ops.host
        return self.addresses[name] or "the engine docker would use"


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames of one kind from several engines, categories united."""
    import pandas as pd

    if not frames:
        return pd.DataFrame({"engine": pd.Series([], dtype="object")})
    merged = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    for column in frames[0].columns:
        if isinstance(frames[0][column].dtype, pd.CategoricalDtype) and column != "engine":
            merged[column] = merged[column].astype("object").astype("category")
    return merged.reset_index(drop=True)

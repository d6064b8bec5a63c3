"""The facade is typed and documented: what ``help(ops.exec)`` and a type checker see.

Engine-free: signatures are read with :mod:`inspect` and :func:`typing.get_type_hints`, and
the one behaviour checked (how :meth:`Ops.watch` wires a watchdog) builds no connection.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

import opskit
from opskit.ops import Ops

HEAVY = ("pandas", "plotly", "ipywidgets", "docker")


def _public_methods() -> list[tuple[str, Callable[..., object]]]:
    found: list[tuple[str, Callable[..., object]]] = []
    for name, member in vars(Ops).items():
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            assert member.fget is not None, name
            found.append((name, member.fget))
        elif callable(member):
            found.append((name, member))
    return found


METHODS = _public_methods()


def _hints(fn: Callable[..., object]) -> dict[str, object]:
    """The evaluated annotations; names only imported under TYPE_CHECKING (pandas, the bundle
    types) are given here, as a type checker sees them."""
    import pandas as pd

    from opskit.analysis import bundle

    localns = {"pd": pd, "Bundle": bundle.Bundle, "Source": bundle.Source,
               "LiveSource": bundle.LiveSource}
    return typing.get_type_hints(fn, localns=localns)


def _mentions_any(hint: object) -> bool:
    if hint is Any:
        return True
    return any(_mentions_any(arg) for arg in typing.get_args(hint))


def test_the_facade_has_its_methods() -> None:
    names = {name for name, _ in METHODS}
    assert {"exec", "watch", "record", "diagnose", "stats", "logs", "events", "collector",
            "journal", "deploy", "chaos", "copy_to", "copy_from", "network_create"} <= names
    assert len(METHODS) > 30


@pytest.mark.parametrize(("name", "fn"), METHODS, ids=[name for name, _ in METHODS])
def test_every_public_method_is_typed(name: str, fn: Callable[..., object]) -> None:
    hints = _hints(fn)
    assert "return" in hints, f"Ops.{name} has no return annotation"
    assert not _mentions_any(hints["return"]), f"Ops.{name} returns Any"
    for param in inspect.signature(fn).parameters.values():
        if param.name == "self":
            continue
        assert param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD), \
            f"Ops.{name} takes *{param.name}: spell out the arguments it forwards"
        assert param.name in hints, f"Ops.{name}({param.name}) has no annotation"
        assert not _mentions_any(hints[param.name]), f"Ops.{name}({param.name}) is Any"


@pytest.mark.parametrize(("name", "fn"), METHODS, ids=[name for name, _ in METHODS])
def test_every_public_method_documents_its_arguments(name: str,
                                                     fn: Callable[..., object]) -> None:
    doc = inspect.getdoc(fn)
    assert doc and doc.strip(), f"Ops.{name} has no docstring"
    for param in inspect.signature(fn).parameters.values():
        if param.name != "self":
            assert param.name in doc, f"Ops.{name} does not document {param.name}"


def test_connect_is_typed() -> None:
    hints = typing.get_type_hints(opskit.connect)
    assert hints["return"] is Ops
    assert not any(_mentions_any(h) for h in hints.values())


def test_frames_are_dataframes_and_records_are_their_types() -> None:
    import pandas as pd

    from opskit.act.execute import ExecResult
    from opskit.analysis.bundle import Bundle
    from opskit.observe.collector import Collector
    from opskit.observe.journal import EventJournal
    from opskit.records.findings import Finding
    from opskit.recover.watchdog import Watchdog

    returns = {name: _hints(fn)["return"] for name, fn in METHODS}
    for frame in ("containers", "health", "stats", "events", "logs", "actions"):
        assert returns[frame] is pd.DataFrame, frame
    assert returns["watch"] is Watchdog and returns["record"] is Bundle
    assert returns["collector"] is Collector and returns["journal"] is EventJournal
    assert returns["diagnose"] == list[Finding] and returns["exec"] is ExecResult


def test_record_defaults_agree_with_the_bundle_module() -> None:
    from opskit.analysis.bundle import DEFAULT_MAX_BYTES
    from opskit.ops import BUNDLE_MAX_BYTES

    assert BUNDLE_MAX_BYTES == DEFAULT_MAX_BYTES
    assert inspect.signature(Ops.record).parameters["max_bytes"].default == DEFAULT_MAX_BYTES


def test_every_view_takes_the_connection_typed() -> None:
    import opskit.widgets as views

    for name in views.__all__:
        cls = getattr(views, name)
        hints = typing.get_type_hints(cls.__init__)
        if name in ("EngineOverview", "FleetDashboard"):  # the views of several engines
            assert hints.get("fleet") is opskit.Fleet, f"{name}(fleet) is not annotated Fleet"
        else:
            assert hints.get("ops") is Ops, f"{name}(ops) is not annotated Ops"
        assert not any(_mentions_any(h) for h in hints.values()), f"{name}.__init__ takes Any"


def test_import_opskit_loads_no_heavy_package() -> None:
    code = ("import sys, opskit\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout


def test_watch_wires_the_journals_specs_and_bundle_recorder(tmp_path: Path) -> None:
    from opskit.act.actions import ActionJournal
    from opskit.engine.connection import Engine

    engine = cast(Engine, types.SimpleNamespace(host="unix:///nowhere.sock", scope="facade"))
    ops = Ops(engine, journal=ActionJournal(tmp_path / "actions.jsonl"))
    deployed = opskit.ServiceSpec(name="web", image="opskit/demo-web:latest")
    given = opskit.ServiceSpec(name="db", image="opskit/demo-web:latest")
    ops.specs["web"] = deployed
    try:
        wd = ops.watch(["web"], specs={"db": given}, relist_every=2.0)
        assert wd.actions_journal is ops.action_journal
        assert wd.specs == {"web": deployed, "db": given} and wd.relist_every == 2.0
        assert wd.bundle_recorder == ops._record_incident  # records through this connection
        assert ops.watch(record_bundles=False).bundle_recorder is None
    finally:
        ops.action_journal.close()

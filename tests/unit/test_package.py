"""Package-level promises: one-way imports, the error tree, exports, units (no engine)."""

from __future__ import annotations

import inspect
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

import opskit
from opskit import errors
from opskit.base.units import parse_bytes, parse_duration, parse_time
from opskit.engine.translate import translate
from tests.support.paths import NOTEBOOKS


def test_core_imports_no_jupyter_or_plotting() -> None:
    code = ("import sys, opskit, opskit.cli, opskit.act.deploy, opskit.act.manage, "
            "opskit.act.network, opskit.observe.logs, opskit.observe.inspection, "
            "opskit.act.execute, opskit.act.transfer, opskit.act.images; "
            "print(','.join(m for m in ('ipywidgets', 'IPython', 'plotly', 'pandas') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_error_derives_from_the_root_and_is_exported() -> None:
    classes = {name: obj for name, obj in inspect.getmembers(errors, inspect.isclass)
               if issubclass(obj, BaseException) and obj.__module__ == "opskit"}
    assert set(classes) == set(errors.__all__)
    for cls in classes.values():
        assert issubclass(cls, errors.OpsKitError)
        assert cls.__name__ in errors.__doc__, f"{cls.__name__} missing from the tree diagram"
    assert issubclass(errors.InvalidSpec, ValueError)
    assert issubclass(errors.WaitTimeout, TimeoutError)
    assert issubclass(errors.OutOfScope, PermissionError)
    assert issubclass(errors.EngineUnavailable, ConnectionError)


def test_all_matches_real_exports() -> None:
    for name in opskit.__all__:
        assert hasattr(opskit, name), name
    public = {n for n in vars(opskit) if not n.startswith("_") and n[0].isupper()}
    assert public <= set(opskit.__all__)


def test_messages_end_with_a_hint() -> None:
    samples = [errors.ImageNotFound("x:1"), errors.PortInUse(80, "127.0.0.1", "taken"),
               errors.NameConflict("web", "a" * 64), errors.ContainerNotFound("web"),
               errors.EngineUnavailable("unix:///x", "refused"), errors.InsecureEngine("tcp://h"),
               errors.WaitTimeout("web", "healthy", 3, state="running", health="unhealthy")]
    for err in samples:
        assert "Hint:" in str(err), type(err).__name__


def test_a_timeout_about_one_container_names_it() -> None:
    """A read timeout on a call about a container says which one and why that can happen."""
    import requests.exceptions

    exc = requests.exceptions.ReadTimeout("UnixHTTPConnectionPool(host='localhost', port=None): "
                                          "Read timed out. (read timeout=20.0)")
    err = translate(exc, "inspect of web-1", host="unix:///var/run/docker.sock",
                           target="web-1")
    assert isinstance(err, errors.EngineTimeout) and isinstance(err, opskit.EngineUnavailable)
    assert err.target == "web-1" and "inspect of web-1 got no answer" in str(err)
    assert "read timeout=20.0" in str(err) and "paused" in str(err).split("Hint:")[1]
    plain = translate(exc, "listing containers", host="unix:///var/run/docker.sock")
    assert type(plain) is errors.EngineUnavailable


def test_unreachable_engine_is_a_clear_error() -> None:
    with pytest.raises(opskit.EngineUnavailable) as caught:
        opskit.connect("unix:///nonexistent/docker.sock", timeout=2)
    assert "unix:///nonexistent/docker.sock" in str(caught.value)


def test_remote_tcp_without_tls_is_refused() -> None:
    with pytest.raises(opskit.InsecureEngine):
        opskit.connect("tcp://192.0.2.1:2375")


@pytest.mark.parametrize(("text", "expected"), [("64m", 64 << 20), ("1g", 1 << 30),
                                                ("512k", 512 << 10), ("100", 100), (7, 7),
                                                ("1.5g", int(1.5 * (1 << 30)))])
def test_parse_bytes(text, expected) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["-5m", "lots", "5q", ""])
def test_parse_bytes_rejects(text) -> None:
    with pytest.raises(ValueError):
        parse_bytes(text)


def test_parse_duration_and_time() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("250ms") == 0.25
    assert parse_duration(2) == 2.0 and parse_duration(timedelta(seconds=3)) == 3.0
    for bad in ("soon", "5m later", "-"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    assert parse_time("10m", now=now) == now - timedelta(minutes=10)
    assert parse_time("2026-11-26T11:00:00Z") == datetime(2026, 11, 26, 11, tzinfo=UTC)
    assert parse_time(None) is None


def test_nbval_sanitize_file_is_in_the_format_nbval_reads() -> None:
    from nbval.plugin import get_sanitize_patterns

    text = (NOTEBOOKS / "sanitize.cfg").read_text()
    patterns = get_sanitize_patterns(text)
    assert len(patterns) == text.count("regex:") >= 4
    assert patterns[0][1] == "UUID", "the most specific pattern comes first"

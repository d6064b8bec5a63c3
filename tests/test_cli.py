"""The ``opskit`` command, run as a user runs it (a subprocess), on the real engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SESSION, TEST_LABEL, foreign_container, unique

from opskit.cli import LIFECYCLE, _parameters, build_parser
from opskit.errors import InvalidSpec
from opskit.lab import check_exposure, is_loopback

SUBCOMMANDS = ["lab", "demo", "build", "deploy", "teardown", "ps", *LIFECYCLE, "exec", "cp",
               "network", "watch", "chaos", "run-runbook", "record"]


def run(*args: str, scope: str = "", check: bool = False) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "opskit.cli"]
    if scope:
        argv += ["--scope", scope]
    out = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=120,
                         env={**os.environ})
    if check and out.returncode != 0:
        raise AssertionError(f"exit {out.returncode}: {out.stderr}")
    return out


def test_every_subcommand_has_help() -> None:
    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(SUBCOMMANDS) == set(choices)
    for name in SUBCOMMANDS:
        out = run(name, "--help")
        assert out.returncode == 0 and "usage: opskit" in out.stdout, name


def test_expected_errors_have_no_traceback() -> None:
    out = run("-H", "unix:///nonexistent.sock", "ps")
    assert out.returncode == 1
    assert out.stderr.startswith("opskit: error: Docker engine at unix:///nonexistent.sock")
    assert "Traceback" not in out.stderr and "Hint:" in out.stderr
    usage = run("restart")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


@pytest.mark.parametrize("name", ["x=1;import os", "1st", "class", "a-b", "a\nb", ""])
def test_run_runbook_refuses_a_parameter_name_that_is_not_an_identifier(
        name: str, tmp_path: Path) -> None:
    """papermill writes -p NAME into the notebook as code: refused before anything runs."""
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    runs = tmp_path / "runs"
    out = run("run-runbook", str(notebook), "-p", name, "1", "--runs", str(runs))
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and repr(name) in out.stderr, out.stderr
    assert "not a Python identifier" in out.stderr and "Hint:" in out.stderr
    assert "Traceback" not in out.stderr and not runs.exists(), "nothing ran"


def test_run_runbook_parameters_keep_identifiers_and_literals() -> None:
    assert _parameters([["service", "web"], ["n", "3"], ["_x1", "[1, 'a']"]]) == {
        "service": "web", "n": 3, "_x1": [1, "a"]}
    with pytest.raises(InvalidSpec, match="'import'"):
        _parameters([["ok", "1"], ["import", "os"]])


@pytest.mark.parametrize(("ip", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("", False), ("*", False),
    ("192.0.2.10", False), ("no-such-host.invalid", False)])
def test_lab_knows_loopback_addresses(ip: str, loopback: bool) -> None:
    assert is_loopback(ip) is loopback
    assert (check_exposure(ip, root=False) == "") is loopback


def test_lab_warns_on_a_remote_ip_and_refuses_it_as_root() -> None:
    warning = check_exposure("0.0.0.0", root=False)
    assert warning.startswith("opskit: warning:") and "\n" not in warning
    assert "0.0.0.0" in warning and "Docker socket" in warning
    with pytest.raises(InvalidSpec, match="--allow-remote"):
        check_exposure("0.0.0.0", root=True)
    assert check_exposure("0.0.0.0", root=True, allow_remote=True) == warning
    assert check_exposure("127.0.0.1", root=True) == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="the refusal is for root")
def test_lab_as_root_on_every_interface_exits_before_starting() -> None:
    out = run("lab", "--ip", "0.0.0.0", "--port", "1")
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("opskit: error:") and "Docker socket" in out.stderr
    assert "--allow-remote" in out.stderr and "JupyterLab on" not in out.stdout


@pytest.mark.engine
def test_deploy_ps_exec_cp_lifecycle_teardown(clean, demo, tmp_path: Path) -> None:
    scope = clean.engine.scope
    name = unique("cli")
    spec = tmp_path / "web.yaml"
    spec.write_text(f"""
name: {name}
image: opskit/demo-web:latest
labels: {{{TEST_LABEL}: "{SESSION}"}}
stop_timeout: 1
healthcheck:
  test: [CMD, wget, -q, -O-, "http://127.0.0.1:8080/health"]
  interval: 0.5s
  retries: 2
""")
    out = run("deploy", str(spec), scope=scope, check=True)
    assert out.stdout.startswith(f"{name}\t") and "1 created" in out.stderr
    again = run("deploy", str(spec), scope=scope, check=True)
    assert "1 kept" in again.stderr
    ps = run("ps", "--mine", scope=scope, check=True)
    assert name in ps.stdout and "running" in ps.stdout
    ex = run("exec", name, "--", "sh", "-c", "echo out; echo err >&2; exit 3", scope=scope)
    assert (ex.returncode, ex.stdout, ex.stderr) == (3, "out\n", "err\n")
    (tmp_path / "f.txt").write_text("payload")
    run("cp", str(tmp_path / "f.txt"), f"{name}:/tmp/", scope=scope, check=True)
    run("cp", f"{name}:/tmp/f.txt", str(tmp_path / "g.txt"), scope=scope, check=True)
    assert (tmp_path / "g.txt").read_text() == "payload"
    for verb in ("pause", "unpause", "restart", "stop", "start", "kill"):
        res = run(verb, name, scope=scope)
        assert res.returncode == 0 and f"{verb}\t{name}\tok" in res.stdout, (verb, res.stderr)
    down = run("teardown", name, scope=scope, check=True)
    assert f"removed container:{name}" in down.stdout


@pytest.mark.engine
def test_foreign_container_is_refused_on_the_command_line(clean, demo) -> None:
    name = unique("alien")
    foreign_container(clean, name)
    out = run("stop", name, scope=clean.engine.scope)
    assert out.returncode == 1 and "Refusing to stop" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.engine
def test_demo_command_is_idempotent(demo) -> None:
    out = run("demo", check=True)
    assert sorted(out.stdout.split()) == sorted(demo)


def test_watch_follows_a_spec_and_stops_cleanly_on_sigterm(clean, demo, tmp_path: Path) -> None:
    import signal
    import time

    ops, name = clean, unique("cliwatch")
    spec = tmp_path / "web.yaml"
    spec.write_text(f"name: {name}\nimage: opskit/demo-web:latest\n"
                    f"labels: {{{TEST_LABEL}: '{SESSION}'}}\n"
                    "recovery: {action: restart, max_attempts: 2, window: 5m}\n")
    ops.deploy(str(spec), wait="healthy", timeout=20)
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"name: {name}\nimage: opskit/demo-web:latest\nrecovery: {{window: 0s}}\n")
    out = run("watch", "--spec", str(bad), scope=ops.engine.scope)
    assert out.returncode == 1 and "recovery.window" in out.stderr
    assert "Traceback" not in out.stderr
    proc = subprocess.Popen([sys.executable, "-m", "opskit.cli", "--scope", ops.engine.scope,
                             "watch", "--service", name, "--spec", str(spec),
                             "--status-every", "0.5"], stderr=subprocess.PIPE, text=True,
                            env={**os.environ})
    try:
        assert proc.stderr is not None
        deadline, seen = time.monotonic() + 60, []
        while time.monotonic() < deadline:
            seen.append(proc.stderr.readline())
            if "opskit watch: 1 watched" in seen[-1]:
                break
        else:
            raise AssertionError("no status line: " + "".join(seen))
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    assert "opskit watch: stopped" in rest and "Traceback" not in rest

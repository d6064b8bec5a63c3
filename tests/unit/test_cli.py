"""The ``opskit`` command, run as a user runs it (a subprocess), with no engine: every
subcommand's help, errors without a traceback, run-runbook's parameters, and the lab's
refusal to listen beyond loopback as root.

The commands on the real engine are in ../engine/test_cli.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from opskit.act.manage import VERBS
from opskit.base.errors import InvalidSpec
from opskit.cli import COMMAND_OF, _parameters, build_parser
from opskit.lab import check_exposure, is_loopback
from tests.support.cli import run

SUBCOMMANDS = ["lab", "demo", "build", "deploy", "teardown", "ps",
               *(COMMAND_OF.get(v, v) for v in VERBS), "exec", "cp",
               "network", "watch", "chaos", "run-runbook", "record"]


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

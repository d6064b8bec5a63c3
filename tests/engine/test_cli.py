"""The ``opskit`` command, run as a user runs it (a subprocess), on the real engine: deploy,
ps, exec, cp, the lifecycle verbs and teardown; a foreign container refused; ``demo``
idempotent; ``watch`` stopped cleanly by SIGTERM.

What needs no engine (help, usage errors, run-runbook's parameters, the lab) is in
../unit/test_cli.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.live import foreign_container
from tests.support.session import SESSION, TEST_LABEL, unique

pytestmark = pytest.mark.engine


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


def test_foreign_container_is_refused_on_the_command_line(clean, demo) -> None:
    name = unique("alien")
    foreign_container(clean, name)
    out = run("stop", name, scope=clean.engine.scope)
    assert out.returncode == 1 and "Refusing to stop" in out.stderr
    assert "Traceback" not in out.stderr


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

"""A real browser: JupyterLab in Debian's headless Chromium, driven by Playwright (no browser
download). Opens the dashboard notebook, runs it, restarts a demo container from the board, and
checks both the engine (an independent observer sees the restart) and the page."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

import opskit
from tests.support.paths import ROOT
from tests.support.session import SESSION, TEST_LABEL

pytestmark = pytest.mark.engine

ARTEFACTS = ROOT / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """JupyterLab on notebooks/, on 127.0.0.1, with a token; yields its base URL."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    port, token = _free_port(), secrets.token_hex(16)
    # a copy: JupyterLab saves what it runs, and the repository keeps notebooks without outputs
    root = tmp_path_factory.mktemp("lab-root")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    settings = tmp_path_factory.mktemp("lab-settings")
    (settings / "overrides.json").write_text(
        '{"@jupyterlab/apputils-extension:notification": '
        '{"fetchNews": "false", "checkForUpdates": false}}')
    env = {**os.environ, "JUPYTER_TOKEN": token, "JUPYTERLAB_SETTINGS_DIR": str(settings)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
         "--ip=127.0.0.1", f"--port={port}", "--port-retries=0", "--expose-app-in-browser",
         f"--ServerApp.root_dir={root / 'notebooks'}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("JupyterLab did not answer within 60 s")
        yield f"{base}/lab/tree/07-dashboard.ipynb?token={token}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_restart_from_the_board_in_a_real_browser(lab: str, demo, observer) -> None:
    from playwright.sync_api import expect, sync_playwright

    ops = opskit.connect(scope="notebooks")
    name = f"browser-web-{SESSION}"
    dep = ops.deploy(opskit.ServiceSpec(name=name, image="opskit/demo-web:latest", stop_timeout=1,
                                        labels={TEST_LABEL: SESSION}), wait="running")
    before = ops.inspect(name).started_at
    ARTEFACTS.mkdir(exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(lab)
            page.wait_for_selector(".jp-Notebook", timeout=60_000)
            # the execution indicator reads idle before a kernel exists: ask the session itself
            page.wait_for_function(
                "() => window.jupyterapp?.shell?.currentWidget?.sessionContext?.session"
                "?.kernel?.status === 'idle'", timeout=90_000)
            select = page.locator(".widget-select-multiple select").first
            for _ in range(4):  # run-all acts on the current notebook: retry until it ran
                page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
                try:
                    select.wait_for(state="visible", timeout=20_000)
                    break
                except Exception:
                    continue
            expect(select).to_be_visible(timeout=20_000)
            expect(select.locator("option", has_text=name)).to_have_count(1, timeout=30_000)
            select.select_option(label=name)
            page.locator(".widget-button", has_text="restart").first.click()
            confirm = page.locator(".widget-button", has_text="confirm").first
            expect(confirm).to_be_visible(timeout=10_000)
            assert observer.count("restart", dep.ids[0]) == 0, "nothing before confirmation"
            confirm.click()
            observer.wait_for("restart", dep.ids[0], timeout=30)
            expect(page.get_by_text(f"{name}: restart ok").first).to_be_visible(timeout=30_000)
            page.screenshot(path=str(ARTEFACTS / "dashboard.png"), full_page=True)
            browser.close()
        assert ops.inspect(name).started_at > before
        assert (ARTEFACTS / "dashboard.png").stat().st_size > 10_000
    finally:
        ops.teardown(name)
        ops.close()

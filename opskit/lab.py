"""``opskit lab``: JupyterLab on the runbook notebooks, bound to 127.0.0.1, URL and token printed.

When no Docker engine answers, the lab still opens, on the incident-analysis notebook that works
from the bundled sample incident.

The lab's kernels can use the Docker socket, which is root on the host. Another ``--ip`` than
a loopback address is said out loud on stderr, and as root it is refused unless
``--allow-remote`` says the exposure is meant (:func:`check_exposure`).
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import socket
import sys
from pathlib import Path

from .base.errors import InvalidSpec, OpsKitError
from .engine.connection import open_engine

__all__ = ["check_exposure", "is_loopback", "notebooks_dir", "run_lab"]

ANALYSIS_NOTEBOOK = "06-incident-analysis.ipynb"
_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {
    "fetchNews": "false", "checkForUpdates": False}}


def notebooks_dir() -> Path:
    """The ``notebooks/`` folder beside the package (a source checkout), or the current one."""
    for candidate in (Path(__file__).resolve().parent.parent / "notebooks",
                      Path.cwd() / "notebooks"):
        if candidate.is_dir():
            return candidate
    return Path.cwd()


def _quiet_lab_settings() -> None:
    """Switch off the news and update toasts (no network here) in this environment's lab."""
    path = Path(sys.prefix) / "share/jupyter/lab/settings/overrides.json"
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(_OVERRIDES, indent=2))
    except OSError:
        pass  # a read-only environment keeps its toasts; nothing else depends on it


def _engine_answers() -> tuple[bool, str]:

    try:
        engine = open_engine(timeout=3.0)
    except OpsKitError as exc:
        return False, str(exc)
    engine.client.close()
    return True, engine.host


def is_loopback(ip: str) -> bool:
    """True when ``ip`` (an address or a host name) is reachable from this host only.

    ``0.0.0.0``, ``::``, ``*`` and an empty string mean every interface; a host name counts
    as loopback only when every address it resolves to is one.
    """
    name = ip.strip().strip("[]")
    if not name or name == "*":
        return False
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        found = {info[4][0] for info in socket.getaddrinfo(name, None)}
    except (OSError, UnicodeError):
        return False
    return bool(found) and all(ipaddress.ip_address(str(a).split("%")[0]).is_loopback
                               for a in found)


def check_exposure(ip: str, *, allow_remote: bool = False, root: bool | None = None) -> str:
    """Whether JupyterLab may listen on ``ip``: ``""`` for a loopback address, else the
    one-line warning to print.

    Args:
        ip: the address given to ``--ip``.
        allow_remote: the user said the exposure is meant (``--allow-remote``).
        root: whether this process is root; read from ``os.geteuid()`` when omitted.

    Raises:
        InvalidSpec: a non-loopback address as root without ``allow_remote``.
    """
    if is_loopback(ip):
        return ""
    if root is None:
        root = hasattr(os, "geteuid") and os.geteuid() == 0
    risk = (f"JupyterLab on --ip {ip or '*'} is reachable from other hosts, and its kernels "
            "run Python with the Docker socket (root on this host) for anyone with the token")
    if root and not allow_remote:
        raise InvalidSpec("lab --ip", f"refusing to serve as root on a non-loopback address: "
                          f"{risk}", hint="keep the default --ip 127.0.0.1 and reach it through "
                          "an SSH tunnel (ssh -L 8888:127.0.0.1:8888 HOST), or add "
                          "--allow-remote if this exposure is meant.")
    return f"opskit: warning: {risk}."


def run_lab(*, port: int = 8888, ip: str = "127.0.0.1", token: str | None = None,
            open_browser: bool = False, allow_remote: bool = False) -> int:
    """Replace this process with JupyterLab serving the notebooks; print the URL first.

    Raises:
        InvalidSpec: ``ip`` is not loopback and this process is root, without
            ``allow_remote`` (see :func:`check_exposure`).
    """
    warning = check_exposure(ip, allow_remote=allow_remote)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    folder = notebooks_dir()
    token = token or secrets.token_hex(16)
    _quiet_lab_settings()
    ok, detail = _engine_answers()
    default_url = "/lab"
    if ok:
        print(f"opskit: Docker engine at {detail} answers.", file=sys.stderr)
    else:
        print(f"opskit: no Docker engine answers ({detail.split(' Hint:')[0]}); the notebooks "
              f"that need one say so; opening {ANALYSIS_NOTEBOOK} on the sample incident.",
              file=sys.stderr)
        if (folder / ANALYSIS_NOTEBOOK).exists():
            default_url = f"/lab/tree/{ANALYSIS_NOTEBOOK}"
    url = f"http://{ip}:{port}{default_url}?token={token}"
    print(f"opskit: JupyterLab on {folder}\nopskit: open {url}", file=sys.stderr, flush=True)
    jupyter = shutil.which("jupyter", path=os.path.dirname(sys.executable)) or "jupyter"
    # the token goes through the environment: on argv any local user could read it in /proc
    os.environ["JUPYTER_TOKEN"] = token
    argv = [jupyter, "lab", f"--ip={ip}", f"--port={port}", "--port-retries=0",
            f"--ServerApp.root_dir={folder}", f"--LabApp.default_url={default_url}"]
    if not open_browser:
        argv.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")
    os.execv(jupyter, argv)
    return 0  # pragma: no cover - execv does not return

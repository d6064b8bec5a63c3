"""A throwaway second Docker engine in its own network namespace, for fault tests.

Tests of dockerd restarting under a watcher, of an unreachable or stalled host, and of a
misconfigured remote TLS engine need an engine a test may SIGTERM, SIGKILL, SIGSTOP and restart
without touching the shared one. RECIPES.md: a second dockerd must run in **its own network
namespace** (on the host's namespace it deletes the first engine's ``docker0``), entered with
``nsenter --net=`` (``ip netns exec`` remounts ``/sys`` and dockerd then fails with "Devices
cgroup isn't mounted"). Everything it owns lives under one short folder ``D`` (unix socket
paths are limited to 107 bytes)::

    ip netns add NAME && ip netns exec NAME ip link set lo up
    nsenter --net=/var/run/netns/NAME dockerd --config-file D/daemon.json --data-root D/data \\
        --exec-root D/exec --pidfile D/d.pid -H unix://D/d.sock \\
        --containerd-namespace opskit-NAME --containerd-plugins-namespace opskit-NAME-plugins

``--config-file`` keeps ``/etc/docker/daemon.json`` (the first engine's settings) out, and the
containerd namespaces keep the two engines apart when both use a system containerd. iptables
stays on: its rules live in the namespace.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import docker

__all__ = ["MAIN_URL", "ThrowawayEngine"]

MAIN_URL = "unix:///var/run/docker.sock"
NETNS_DIR = Path("/var/run/netns")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_MAX_DIR_LEN = 60  # D/exec/containerd/containerd.sock.ttrpc must stay under 108 bytes
_STOP_TIMEOUT = 30.0


def _ping(sock: Path, timeout: float = 1.0) -> bool:
    """GET /_ping on a unix socket; True when the engine answers 200 OK."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(sock))
            conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            data = b""
            while chunk := conn.recv(4096):
                data += chunk
    except OSError:
        return False
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    return len(status) >= 2 and status[1] == b"200" and body.strip() == b"OK"


def _run(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def _unescape_mount(path: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def _alive(pid: int) -> bool:
    """True if the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class ThrowawayEngine:
    """A dockerd of its own, in network namespace ``name``, under a fresh folder in /tmp.

    Use as a context manager or call :meth:`start` and, always, :meth:`close`::

        with ThrowawayEngine("opsA") as eng:
            eng.load_image("opskit-test/observer-busybox:latest")
            client = eng.client()
            ...
            eng.sigkill()
            eng.start()          # the same data-root: containers survive, stopped

    Needs root, ``ip``, ``nsenter``, ``dockerd`` and the ``docker`` client
    (:meth:`unavailable_reason` says what is missing). ``extra_args`` go to dockerd (for
    example ``-H tcp://...`` and ``--tlsverify`` flags for TLS tests).
    """

    def __init__(
        self, name: str = "opsA", *, base_dir: str = "/tmp", extra_args: Sequence[str] = ()
    ) -> None:
        if not _NAME.match(name):
            raise ValueError(f"netns name {name!r}: use 1 to 15 of A-Z a-z 0-9 _ . -")
        self.name = name
        self.base_dir = base_dir
        self.extra_args = list(extra_args)
        self.dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._created_netns = False
        self._closed = False
        self._clients: list[docker.DockerClient] = []

    # -- facts --------------------------------------------------------------------------------

    @staticmethod
    def unavailable_reason() -> str | None:
        """Why a throwaway engine cannot run here (for ``pytest.skip``), or ``None``."""
        if os.geteuid() != 0:
            return "needs root (network namespaces, dockerd)"
        missing = [t for t in ("ip", "nsenter", "dockerd", "docker") if not shutil.which(t)]
        return f"missing {', '.join(missing)}" if missing else None

    @property
    def netns_path(self) -> Path:
        """The bind mount ``ip netns add`` makes for the namespace."""
        return NETNS_DIR / self.name

    @property
    def sock(self) -> Path:
        """The engine's unix socket, ``D/d.sock``."""
        if self.dir is None:
            raise RuntimeError(f"throwaway engine {self.name} was never started")
        return self.dir / "d.sock"

    @property
    def url(self) -> str:
        """``unix://D/d.sock``, for docker-py, ``docker -H`` or ``DOCKER_HOST``."""
        return f"unix://{self.sock}"

    @property
    def log_path(self) -> Path | None:
        """dockerd's output (removed by :meth:`close`)."""
        return None if self.dir is None else self.dir / "dockerd.log"

    @property
    def pid(self) -> int | None:
        """The running dockerd's pid, or ``None`` when it is not running."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the dockerd process started last is alive."""
        return self._proc is not None and self._proc.poll() is None

    def ping(self, timeout: float = 1.0) -> bool:
        """True when the engine answers ``/_ping``."""
        return self.dir is not None and _ping(self.sock, timeout)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines dockerd wrote, for error messages."""
        try:
            assert self.log_path is not None
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (AssertionError, OSError):
            return "(no dockerd log)"

    # -- life cycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> Self:
        """Create the namespace and folder if needed, start dockerd and wait until it answers.

        Called again after :meth:`sigkill` or :meth:`sigterm`, it restarts dockerd on the same
        data-root. A no-op while dockerd runs.
        """
        if self._closed:
            raise RuntimeError(f"throwaway engine {self.name} is closed")
        if self.running:
            self.wait_ready(timeout)
            return self
        self._ensure_netns()
        self._ensure_dir()
        assert self.dir is not None
        self._drop_stale_pidfiles()
        command = [
            "nsenter", f"--net={self.netns_path}", "dockerd",
            "--config-file", str(self.dir / "daemon.json"),
            "--data-root", str(self.dir / "data"),
            "--exec-root", str(self.dir / "exec"),
            "--pidfile", str(self.dir / "d.pid"),
            "-H", f"unix://{self.sock}",
            "--containerd-namespace", f"opskit-{self.name}",
            "--containerd-plugins-namespace", f"opskit-{self.name}-plugins",
            *self.extra_args,
        ]
        assert self.log_path is not None
        with open(self.log_path, "ab") as log:
            # nsenter execs dockerd (no --fork), so the child's pid is dockerd's pid.
            self._proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll ``/_ping`` until the engine answers; raise with the log's tail if it cannot."""
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise RuntimeError(
                    f"throwaway dockerd {self.name} is not running (exit code {code}); "
                    f"log:\n{self.log_tail()}")
            if self.ping():
                return
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"throwaway dockerd {self.name} did not answer on {self.sock} within "
                    f"{timeout:g} s; log:\n{self.log_tail()}")
            time.sleep(0.1)

    def client(self, timeout: float = 30.0) -> docker.DockerClient:
        """A new docker-py client for this engine; :meth:`close` closes it."""
        client = docker.DockerClient(base_url=self.url, timeout=timeout)
        self._clients.append(client)
        return client

    def load_image(self, tag: str, source_url: str = MAIN_URL, timeout: float = 120.0) -> None:
        """Copy an image from the main engine: ``docker save TAG | docker -H URL load``."""
        save = subprocess.Popen(["docker", "-H", source_url, "save", tag],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert save.stdout is not None
        try:
            load = subprocess.run(["docker", "-H", self.url, "load"], stdin=save.stdout,
                                  capture_output=True, text=True, timeout=timeout, check=False)
        finally:
            save.stdout.close()
            _, save_err = save.communicate(timeout=timeout)
        if save.returncode != 0 or load.returncode != 0:
            raise RuntimeError(
                f"copying {tag} to throwaway engine {self.name} failed: "
                f"save: {save_err.decode(errors='replace').strip()} "
                f"load: {load.stderr.strip()}")

    def sigterm(self, timeout: float = _STOP_TIMEOUT) -> int | None:
        """SIGTERM dockerd and wait for it (SIGKILL after ``timeout``); its exit code."""
        return self._signal(signal.SIGTERM, timeout)

    def sigkill(self) -> int | None:
        """SIGKILL dockerd (its containers' shims live on) and reap it; its exit code."""
        return self._signal(signal.SIGKILL, 10.0)

    def _signal(self, sig: signal.Signals, timeout: float) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            containerd = self._containerd_pid()
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10.0)
            # dockerd's containerd gets SIGKILL when dockerd dies (its parent-death signal);
            # wait for that so a restart does not find it half gone.
            deadline = time.monotonic() + 10.0
            while containerd is not None and _alive(containerd) and time.monotonic() < deadline:
                time.sleep(0.05)
        return proc.returncode

    def _containerd_pid(self) -> int | None:
        if self.dir is None:
            return None
        try:
            return int((self.dir / "exec" / "containerd" / "containerd.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def _drop_stale_pidfiles(self) -> None:
        """Before a restart: dockerd refuses to start while ``d.pid`` names a process that
        still has a /proc entry, and it waits in vain (then exits with "timeout waiting for
        containerd to start") on a ``containerd.pid`` naming a zombie. On hosts whose PID 1
        reaps late, a SIGKILLed engine leaves both."""
        assert self.dir is not None
        (self.dir / "d.pid").unlink(missing_ok=True)  # our dockerd is gone: we reaped it
        containerd = self._containerd_pid()
        if containerd is not None and not _alive(containerd):
            (self.dir / "exec" / "containerd" / "containerd.pid").unlink(missing_ok=True)

    def close(self) -> None:
        """Tear everything down as RECIPES says; idempotent, and safe after a failed start.

        Removes the engine's containers (when it answers), SIGTERMs dockerd and waits for it,
        kills what it left running (after a SIGKILL: shims and containers), unmounts anything
        under D (``umount -l``), removes D, then ``ip netns del``. Raises ``RuntimeError``
        naming what could not be cleaned, after trying every step.
        """
        if self._closed:
            return
        self._closed = True
        problems: list[str] = []
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()
        if self.running and self.ping():
            self._remove_containers(problems)
        self.sigterm()
        self._kill_residue(problems)
        self._unmount_all(problems)
        if self.dir is not None and self.dir.exists():
            try:
                shutil.rmtree(self.dir)
            except OSError as exc:
                problems.append(f"rm -r {self.dir}: {exc}")
        if self._created_netns and self.netns_path.exists():
            result = _run("ip", "netns", "del", self.name)
            if result.returncode != 0:
                problems.append(f"ip netns del {self.name}: {result.stderr.strip()}")
        if problems:
            raise RuntimeError(
                f"throwaway engine {self.name} left residue: " + "; ".join(problems))

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- helpers ------------------------------------------------------------------------------

    def _netns_pids(self) -> set[int]:
        if not self.netns_path.exists():
            return set()
        result = _run("ip", "netns", "pids", self.name)
        return {int(p) for p in result.stdout.split() if p.isdigit()}

    def _ensure_netns(self) -> None:
        if self.netns_path.exists():
            if not self._created_netns and self._netns_pids():
                raise RuntimeError(
                    f"network namespace {self.name} exists and has processes (another "
                    f"throwaway engine?); pick another name or clean up: ip netns del {self.name}")
        else:
            result = _run("ip", "netns", "add", self.name)
            if result.returncode != 0:
                raise RuntimeError(f"ip netns add {self.name}: {result.stderr.strip()}")
        self._created_netns = True  # an empty leftover is adopted, and deleted by close()
        result = _run("ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up")
        if result.returncode != 0:
            raise RuntimeError(f"lo up in netns {self.name}: {result.stderr.strip()}")

    def _ensure_dir(self) -> None:
        if self.dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix=f"ok-{self.name}-", dir=self.base_dir))
            if len(str(self.dir)) > _MAX_DIR_LEN:
                raise RuntimeError(f"{self.dir} is too long for unix socket paths")
            (self.dir / "daemon.json").write_text("{}\n")

    def _container_ids(self) -> set[str]:
        if self.dir is None:
            return set()
        folder = self.dir / "data" / "containers"
        return {p.name for p in folder.iterdir()} if folder.is_dir() else set()

    def _remove_containers(self, problems: list[str]) -> None:
        try:
            client = docker.DockerClient(base_url=self.url, timeout=60)
            try:
                for summary in client.api.containers(all=True):
                    client.api.remove_container(summary["Id"], force=True, v=True)
            finally:
                client.close()
        except Exception as exc:
            problems.append(f"removing containers: {exc}")

    def _kill_residue(self, problems: list[str]) -> None:
        """SIGKILL what outlived dockerd: anything in the namespace, naming D, or in the
        cgroup of one of its containers; then remove those containers' empty cgroups."""
        if self.dir is None:
            return
        ids = self._container_ids()
        marker = str(self.dir).encode()
        pids = self._netns_pids()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                mine = marker in (entry / "cmdline").read_bytes() or (
                    ids and any(i in (entry / "cgroup").read_text() for i in ids))
                if mine:
                    pids.add(int(entry.name))
            except OSError:
                continue
        pids.discard(os.getpid())
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10.0
        while (left := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
            time.sleep(0.05)
        if left:
            problems.append(f"processes still alive: {left}")
        for cid in ids:
            for pattern in (f"/sys/fs/cgroup/*/docker/{cid}", f"/sys/fs/cgroup/docker/{cid}",
                            f"/sys/fs/cgroup/*/system.slice/docker-{cid}.scope",
                            f"/sys/fs/cgroup/system.slice/docker-{cid}.scope"):
                for path in glob.glob(pattern):
                    with contextlib.suppress(OSError):
                        os.rmdir(path)

    def _mounts_under_dir(self) -> list[str]:
        if self.dir is None:
            return []
        prefix = str(self.dir)
        with open("/proc/self/mounts") as mounts:
            points = [_unescape_mount(line.split()[1]) for line in mounts]
        return [p for p in points if p == prefix or p.startswith(prefix + "/")]

    def _unmount_all(self, problems: list[str]) -> None:
        for point in sorted(set(self._mounts_under_dir()), key=len, reverse=True):
            result = _run("umount", "-l", point)
            if result.returncode != 0 and point in self._mounts_under_dir():
                problems.append(f"umount -l {point}: {result.stderr.strip()}")

"""A real three-manager Docker Swarm on this machine, for the swarm tests, notebook 09 and the
bench: three dockerd, each in its own network namespace, wired by veth pairs to a bridge in a
fourth "switch" namespace (``../shared/SWARM.md``, the recipe checked here). Nothing touches
the host's own network namespace.

Each node's dockerd runs in a mount namespace of its own with a sysfs of its network namespace
and the cgroup tree bound back (``ip netns exec`` alone leaves the cgroup tree empty), its own
data-root, exec-root (so its own containerd) and socket, ``D/nI/d.sock``. Images come from the
main engine by ``docker save | docker load`` (no registry). Node 1 initialises the swarm, the
others join as managers.

Chaos needs the process and the link: :meth:`SwarmNode.kill` (SIGKILL dockerd, the node is
lost, its containers live on), :meth:`SwarmNode.freeze`/``thaw`` (SIGSTOP/SIGCONT),
:meth:`LocalSwarm.cut`/``mend`` (the node's veth down/up), :meth:`SwarmNode.start` again.

:meth:`LocalSwarm.close` tears everything down whatever state it is in; :func:`sweep` removes
what an earlier run that was killed left behind (namespaces and folders named by the prefix).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self

import docker

from tests.support.second_engine import MAIN_URL, _alive, _ping, _run, _unescape_mount

__all__ = ["LocalSwarm", "SwarmNode", "sweep"]

ROOT = Path("/tmp/oksw")
_PREFIX = re.compile(r"^[a-z][a-z0-9]{1,8}$")


class SwarmNode:
    """One node: a dockerd in network namespace ``{prefix}n{i}`` at ``{subnet}.1{i}``."""

    def __init__(self, swarm: LocalSwarm, index: int) -> None:
        self.swarm, self.index = swarm, index
        self.netns = f"{swarm.prefix}n{index}"
        self.addr = f"{swarm.subnet}.{10 + index}"
        self.dir = swarm.dir / f"n{index}"
        self._proc: subprocess.Popen[bytes] | None = None
        self.node_id = ""

    @property
    def sock(self) -> Path:
        return self.dir / "d.sock"

    @property
    def url(self) -> str:
        """``unix://.../d.sock``: this node's own engine."""
        return f"unix://{self.sock}"

    @property
    def pidfile(self) -> Path:
        return self.dir / "d.pid"

    @property
    def pid(self) -> int | None:
        """dockerd's pid while it runs."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def ping(self, timeout: float = 1.0) -> bool:
        return _ping(self.sock, timeout)

    def client(self, timeout: float = 30.0) -> docker.DockerClient:
        client = docker.DockerClient(base_url=self.url, timeout=timeout)
        self.swarm._clients.append(client)
        return client

    def start(self, timeout: float = 60.0) -> None:
        """Start dockerd (again, on the same data-root) and wait for ``/_ping``."""
        if self.pid is not None:
            return
        for folder in ("root", "exec", "cg"):
            (self.dir / folder).mkdir(parents=True, exist_ok=True)
        self.pidfile.unlink(missing_ok=True)
        containerd = self.dir / "exec" / "containerd" / "containerd.pid"
        with contextlib.suppress(OSError, ValueError):
            if not _alive(int(containerd.read_text().strip())):
                containerd.unlink()
        d = self.dir
        script = (
            f"mount --rbind /sys/fs/cgroup {d}/cg && mount -t sysfs sysfs /sys && "
            f"mount --rbind {d}/cg /sys/fs/cgroup && exec dockerd --config-file "
            f"{self.swarm.dir}/daemon.json --data-root {d}/root --exec-root {d}/exec "
            f"--pidfile {self.pidfile} --host unix://{self.sock} "
            f"--containerd-namespace ok-{self.netns} "
            f"--containerd-plugins-namespace ok-{self.netns}-p")
        with open(d / "dockerd.log", "ab") as log:
            self._proc = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{self.netns}", "unshare", "--mount",
                 "--propagation", "slave", "sh", "-c", script],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"swarm node {self.netns}: dockerd did not come up; log:\n"
                                   + self.log_tail())
            time.sleep(0.1)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.dir / "dockerd.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _signal(self, sig: signal.Signals) -> int | None:
        pid = self.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        return pid

    def kill(self) -> None:
        """SIGKILL this node's dockerd (a lost node: its containers keep running)."""
        pid = self._signal(signal.SIGKILL)
        self._reap(pid)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM dockerd and wait for it."""
        pid = self._signal(signal.SIGTERM)
        self._reap(pid, timeout)

    def freeze(self) -> None:
        """SIGSTOP dockerd (a hung node: the socket accepts, nothing answers)."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def cut(self) -> None:
        """Take the node's link down (see :meth:`LocalSwarm.cut`)."""
        self.swarm.cut(self)

    def mend(self) -> None:
        self.swarm.mend(self)

    def label(self, **labels: str) -> None:
        """Add node labels through a manager that answers (the whole spec, as the API needs)."""
        for other in self.swarm.nodes:
            if other.ping():
                api = other.client().api
                node = api.inspect_node(self.node_id)
                spec = dict(node["Spec"])
                spec["Labels"] = {**(spec.get("Labels") or {}), **labels}
                api.update_node(self.node_id, node["Version"]["Index"], spec)
                return
        raise RuntimeError("no node of the swarm answers")

    def _reap(self, pid: int | None, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while pid is not None and _alive(pid) and time.monotonic() < deadline:
            if self._proc is not None:
                self._proc.poll()
            time.sleep(0.05)
        if pid is not None and _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5)


class LocalSwarm:
    """Three (or ``size``) dockerd joined as Swarm managers; see the module docstring.

    ``prefix`` names the namespaces (``{prefix}sw``, ``{prefix}n1``...) and the folder
    ``/tmp/oksw/{prefix}``; ``net`` is the third octet of ``192.168.N.0/24`` used inside them.
    """

    def __init__(self, prefix: str = "oks", size: int = 3, *, net: int = 250) -> None:
        if not _PREFIX.match(prefix):
            raise ValueError(f"prefix {prefix!r}: 2 to 9 lower-case letters and digits")
        self.prefix, self.subnet = prefix, f"192.168.{net}"
        self.dir = ROOT / prefix
        self.switch = f"{prefix}sw"
        self.nodes = [SwarmNode(self, i) for i in range(1, size + 1)]
        self._clients: list[docker.DockerClient] = []

    @staticmethod
    def unavailable_reason() -> str | None:
        """Why a local swarm cannot run here (for ``pytest.skip``), or None."""
        if os.geteuid() != 0:
            return "needs root (network namespaces, dockerd)"
        missing = [t for t in ("ip", "nsenter", "unshare", "dockerd", "docker")
                   if not shutil.which(t)]
        return f"missing {', '.join(missing)}" if missing else None

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def up(self, images: Sequence[str] = (), timeout: float = 90.0) -> Self:
        """Network, dockerd per node, images loaded, swarm initialised and joined."""
        sweep(self.prefix)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "daemon.json").write_text("{}\n")
        try:
            self._network()
            with ThreadPoolExecutor(len(self.nodes)) as pool:
                list(pool.map(lambda n: n.start(timeout), self.nodes))
            self._load(images)
            self._join()
        except BaseException:
            self.close()
            raise
        return self

    def _network(self) -> None:
        sh(f"ip netns add {self.switch}", f"ip -n {self.switch} link add br0 type bridge",
           f"ip -n {self.switch} link set br0 up", f"ip -n {self.switch} link set lo up")
        for node in self.nodes:
            i, ns = node.index, node.netns
            sh(f"ip netns add {ns}",
               f"ip link add name {self.prefix}s{i} netns {self.switch} type veth peer "
               f"name eth0 netns {ns}",
               f"ip -n {self.switch} link set {self.prefix}s{i} master br0",
               f"ip -n {self.switch} link set {self.prefix}s{i} up",
               f"ip -n {ns} link set lo up", f"ip -n {ns} addr add {node.addr}/24 dev eth0",
               f"ip -n {ns} link set eth0 up")

    def _load(self, images: Sequence[str]) -> None:
        if not images:
            return
        tar = self.dir / "images.tar"
        out = subprocess.run(["docker", "-H", MAIN_URL, "save", "-o", str(tar), *images],
                             capture_output=True, text=True, check=False, timeout=120)
        if out.returncode:
            raise RuntimeError(f"docker save {' '.join(images)}: {out.stderr.strip()}")

        def load(node: SwarmNode) -> None:
            res = subprocess.run(["docker", "-H", node.url, "load", "-q", "-i", str(tar)],
                                 capture_output=True, text=True, check=False, timeout=120)
            if res.returncode:
                raise RuntimeError(f"docker load on {node.netns}: {res.stderr.strip()}")

        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(load, self.nodes))
        tar.unlink(missing_ok=True)

    def _join(self) -> None:
        first = self.nodes[0]
        lead = first.client()
        lead.swarm.init(advertise_addr=first.addr, listen_addr=f"{first.addr}:2377")
        token = lead.swarm.attrs["JoinTokens"]["Manager"]
        first.node_id = lead.info()["Swarm"]["NodeID"]
        for node in self.nodes[1:]:
            client = node.client()
            client.swarm.join(remote_addrs=[f"{first.addr}:2377"], join_token=token,
                              listen_addr=f"{node.addr}:2377", advertise_addr=node.addr)
            node.node_id = client.info()["Swarm"]["NodeID"]
        for node in self.nodes:  # labels tell nodes apart: every node has the host's name
            spec = lead.api.inspect_node(node.node_id)
            body = dict(spec["Spec"])
            body["Labels"] = {**(body.get("Labels") or {}), "opskit.lab.node": node.netns}
            lead.api.update_node(node.node_id, spec["Version"]["Index"], body)

    def cut(self, node: SwarmNode) -> None:
        """Cut a node's link (its veth on the switch down): it stays up, alone."""
        sh(f"ip -n {self.switch} link set {self.prefix}s{node.index} down")

    def mend(self, node: SwarmNode) -> None:
        sh(f"ip -n {self.switch} link set {self.prefix}s{node.index} up")

    def close(self) -> None:
        """Stop every node, kill what they left, unmount, remove the folder and namespaces."""
        for client in self._clients:
            with contextlib.suppress(Exception):
                client.close()
        self._clients.clear()
        for node in self.nodes:
            node.thaw()
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda n: n.stop(20), self.nodes))
        sweep(self.prefix)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def sh(*commands: str) -> None:
    for command in commands:
        res = _run(*command.split())
        if res.returncode:
            raise RuntimeError(f"{command}: {res.stderr.strip()}")


def sweep(prefix: str) -> list[str]:
    """Remove what a swarm with this prefix left: processes under its folder or in its
    namespaces (SIGKILL), mounts, the folder, the namespaces. Returns what it removed."""
    folder = str(ROOT / prefix)
    done: list[str] = []
    netns = [n for n in (p.name for p in Path("/run/netns").glob(f"{prefix}*"))
             if re.fullmatch(rf"{prefix}(sw|n\d+)", n)] if Path("/run/netns").is_dir() else []
    pids: set[int] = set()
    for ns in netns:
        pids |= {int(p) for p in _run("ip", "netns", "pids", ns).stdout.split() if p.isdigit()}
    marker = folder.encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes():
                    pids.add(int(entry.name))
    pids.discard(os.getpid())
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pids:
        done.append(f"{len(pids)} processes")
    with open("/proc/self/mounts") as mounts:
        points = [_unescape_mount(line.split()[1]) for line in mounts]
    for point in sorted({p for p in points if p.startswith(folder + "/")}, key=len, reverse=True):
        _run("umount", "-l", point)
        done.append(point)
    if Path(folder).exists():
        shutil.rmtree(folder, ignore_errors=True)
        done.append(folder)
    for ns in netns:
        _run("ip", "netns", "del", ns)
        done.append(f"netns {ns}")
    return done

"""A remote-looking engine for tests: certificates made on the spot, and a veth link from this
namespace to a test's own network namespace, so a throwaway dockerd can listen on
``tcp://10.251.X.2:2376`` with ``--tlsverify`` and be reached as a remote host would be.

Only the namespace the test made is touched: the host end of the link is one interface with a
/30, and deleting the namespace (``ThrowawayEngine.close``) deletes the pair.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TlsFiles", "link_netns", "make_certs"]


@dataclass(frozen=True)
class TlsFiles:
    """A CA, a server certificate for one IP address, and a client certificate it signed."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def dockerd_args(self) -> list[str]:
        return ["--tlsverify", "--tlscacert", str(self.ca), "--tlscert", str(self.server_cert),
                "--tlskey", str(self.server_key)]


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]}: {done.stderr.strip()}")


def make_certs(folder: Path, ip: str, name: str = "ca") -> TlsFiles:
    """EC P-256 keys; the server certificate names ``ip``; the client one is for clientAuth."""
    folder.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", f"{name}-key.pem", "-out", f"{name}.pem",
             "-days", "2", "-subj", f"/CN=opskit test {name}", cwd=folder)
    for role, ext in (("server", f"subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")):
        (folder / f"{role}.ext").write_text(ext + "\n")
        _openssl("req", "-new", *ec, "-keyout", f"{role}-key.pem", "-out", f"{role}.csr",
                 "-subj", f"/CN={role}", cwd=folder)
        _openssl("x509", "-req", "-in", f"{role}.csr", "-CA", f"{name}.pem", "-CAkey",
                 f"{name}-key.pem", "-CAcreateserial", "-out", f"{role}.pem", "-days", "2",
                 "-extfile", f"{role}.ext", cwd=folder)
    return TlsFiles(folder / f"{name}.pem", folder / "server.pem", folder / "server-key.pem",
                    folder / "client.pem", folder / "client-key.pem")


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def link_netns(netns: str, host_if: str, subnet: int) -> str:
    """Create ``netns`` and a veth pair into it: ``10.251.SUBNET.1/30`` here, ``.2`` inside;
    the address inside."""
    inside = f"10.251.{subnet}.2"
    _ip("netns", "add", netns)
    _ip("-n", netns, "link", "set", "lo", "up")
    _ip("link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", netns)
    _ip("addr", "add", f"10.251.{subnet}.1/30", "dev", host_if)
    _ip("link", "set", host_if, "up")
    _ip("-n", netns, "addr", "add", f"{inside}/30", "dev", "eth0")
    _ip("-n", netns, "link", "set", "eth0", "up")
    return inside

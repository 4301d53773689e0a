"""Network namespaces as hosts for end-to-end tests (CI runs as root); skips where they cannot be made.

``netns_hosts(2)`` gives two namespaces linked to each other by one veth pair (each sees the other's
address only: two machines on one wire). ``netns_hosts(n, uplink=True)`` links each namespace to the
root namespace instead, by its own veth pair: the host reaches ``host.gateway`` (the root side's
address), where a ``TcpRelay`` can forward to a service listening on the machine's loopback only
(PostgreSQL on 127.0.0.1). Nothing else of the machine is reconfigured; everything is removed on exit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import threading
import uuid

import pytest


def sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False)


@dataclasses.dataclass(frozen=True)
class Host:
    """One namespace: its name, its interface (inside it), its address, and the root side's address."""

    netns: str
    link: str
    address: str
    gateway: str = ""  # uplink only: the root namespace's address on this host's link

    def command(self, *args: str) -> list[str]:
        """``args`` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.netns, *args]


def netns_required() -> None:
    """Skip (with the reason) unless this process may make network namespaces."""
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2 (`ip netns`) to make network namespaces")
    if os.geteuid() != 0:
        pytest.skip("needs root to make network namespaces (CI runs as root)")


@contextlib.contextmanager
def netns_hosts(count: int = 2, *, uplink: bool = False, subnet: str = "10.77"):
    """``count`` linked namespaces (``Host`` each); skips with the reason where they cannot be made."""
    netns_required()
    if not uplink and count != 2:
        raise ValueError("namespaces linked to each other come in pairs; use uplink=True for more")
    tag = uuid.uuid4().hex[:6]
    net = int(tag[:2], 16) % 200 + 20
    letters = "abcdefghij"[:count]
    if uplink:  # host i: 10.x.net.(4i+2)/30 inside, 10.x.net.(4i+1)/30 on the root side
        hosts = [
            Host(f"ll{tag}{c}", f"lv{tag}{c}", f"{subnet}.{net}.{4 * i + 2}", f"{subnet}.{net}.{4 * i + 1}")
            for i, c in enumerate(letters)
        ]
    else:
        hosts = [Host(f"ll{tag}{c}", f"lv{tag}{c}", f"{subnet}.{net}.{i + 1}") for i, c in enumerate(letters)]
    made = sh("ip", "netns", "add", hosts[0].netns)
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {made.stderr.strip()}")
    roots = []  # root-side interfaces (uplink): deleting one deletes its peer too
    try:
        steps = [("ip", "netns", "add", h.netns) for h in hosts[1:]]
        if uplink:
            for h in hosts:
                root = f"lr{h.link[2:]}"
                roots.append(root)
                steps += [
                    ("ip", "link", "add", root, "type", "veth", "peer", "name", h.link),
                    ("ip", "addr", "add", f"{h.gateway}/30", "dev", root),
                    ("ip", "link", "set", root, "up"),
                ]
        else:
            steps.append(("ip", "link", "add", hosts[0].link, "type", "veth", "peer", "name", hosts[1].link))
        prefix = 30 if uplink else 24
        for h in hosts:
            steps += [
                ("ip", "link", "set", h.link, "netns", h.netns),
                ("ip", "netns", "exec", h.netns, "ip", "addr", "add", f"{h.address}/{prefix}", "dev", h.link),
                ("ip", "netns", "exec", h.netns, "ip", "link", "set", h.link, "up"),
                ("ip", "netns", "exec", h.netns, "ip", "link", "set", "lo", "up"),
            ]
        for step in steps:
            done = sh(*step)
            if done.returncode != 0:
                pytest.skip(
                    f"cannot link network namespaces here ({' '.join(step[:3])}): {done.stderr.strip()}"
                )
        yield hosts
    finally:
        for root in roots:
            sh("ip", "link", "del", root)
        for h in hosts:
            sh("ip", "netns", "del", h.netns)


class TcpRelay:
    """Forwards TCP connections made to ``listen`` (an address of the root namespace) to ``target``.

    A thread accepts; two threads per connection copy each direction until either side closes.
    ``close`` stops listening and cuts every open connection.
    """

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]):
        self.target = target
        self.server = socket.create_server(listen)
        self.address = self.server.getsockname()[:2]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self.accept, name="tcp-relay", daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                if self.closed:
                    client.close()
                    upstream.close()
                    return
                self.sockets += [client, upstream]
            pair = [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pump, args=(src, dst, pair), daemon=True).start()

    def pump(self, src: socket.socket, dst: socket.socket, pair: list) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)  # the other side sees the end too
            with self.lock:
                pair.append(None)  # one direction done; the second one closes both sockets
                last = pair.count(None) == 2
                if last:
                    self.sockets = [s for s in self.sockets if s is not src and s is not dst]
            if last:
                for sock in (src, dst):
                    sock.close()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            opened, self.sockets = self.sockets, []
        with contextlib.suppress(OSError):
            self.server.close()
        for sock in opened:
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> TcpRelay:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""`harness lab`: the source document's two hosts on one machine.

The lesson drove its apiserver with wrk from a second host. Here the second host is two network
namespaces, a server and a client, joined by a veth pair: the packets then cross a (virtual) NIC
with its MTU, qdisc and softirq work instead of loopback's shortcuts. The addresses come from
198.18.0.0/15, the block RFC 2544 reserves for benchmarking, so load sent to them can never reach
anyone else's machine. Creating namespaces needs root.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import psutil

from harness.errors import RunError

BENCHMARK_BLOCK = IPv4Network("198.18.0.0/15")  # RFC 2544
DEFAULT_NAME = "mwbench"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
# The veth's ends, one in each namespace, named for where they lead (at most 15 characters).
CLIENT_END, SERVER_END = "to-server", "to-client"


class LabError(RunError):
    """The lab cannot be made or removed here; one line that says what to do."""


@dataclass(frozen=True)
class Lab:
    """Two namespaces, NAME-server and NAME-client, with a /30 between them."""

    name: str = DEFAULT_NAME
    client_address: str = "198.18.0.1"
    server_address: str = "198.18.0.2"
    prefix: int = 30

    @property
    def server_ns(self) -> str:
        return f"{self.name}-server"

    @property
    def client_ns(self) -> str:
        return f"{self.name}-client"

    @property
    def namespaces(self) -> tuple[str, str]:
        return self.server_ns, self.client_ns


@dataclass
class LabStatus:
    lab: Lab
    present: list[str] = field(default_factory=list)  # the lab's namespaces that exist
    addresses: dict[str, list[str]] = field(default_factory=dict)  # namespace -> CIDRs, up links
    pids: dict[str, list[int]] = field(default_factory=dict)  # namespace -> processes inside

    def _has(self, namespace: str, address: str) -> bool:
        return self.addresses.get(namespace, []) == [f"{address}/{self.lab.prefix}"]

    @property
    def up(self) -> bool:
        """Both namespaces there, each with its address on a link that is up."""
        lab = self.lab
        return self._has(lab.server_ns, lab.server_address) and self._has(
            lab.client_ns, lab.client_address
        )


def check_lab(lab: Lab) -> None:
    """Names and addresses that can work, said before anything is created."""
    if not _NAME_RE.match(lab.name):
        raise LabError(f"lab name must be 1-32 lowercase letters, digits or '-': {lab.name!r}")
    try:
        net = IPv4Network(f"{lab.client_address}/{lab.prefix}", strict=False)
        server, client = IPv4Address(lab.server_address), IPv4Address(lab.client_address)
    except ValueError as exc:
        raise LabError(f"the lab's addresses must be IPv4 addresses: {exc}") from None
    if not net.subnet_of(BENCHMARK_BLOCK) or server not in net or server == client:
        raise LabError(
            f"the lab's addresses must be two hosts of one subnet of {BENCHMARK_BLOCK} "
            "(RFC 2544's benchmarking block)"
        )


def check_can_run() -> str:
    """The `ip` to run, if this process may make namespaces; LabError otherwise."""
    if os.geteuid() != 0:
        raise LabError("harness lab needs root to create network namespaces: run it with sudo")
    ip = shutil.which("ip")
    if ip is None:
        raise LabError("harness lab needs `ip` (iproute2): apt-get install -y iproute2")
    return ip


def _ip(ip: str, *args: str) -> str:
    done = subprocess.run(
        [ip, *args], capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise LabError(f"ip {' '.join(args)}: {said[0] if said else f'exit {done.returncode}'}")
    return done.stdout


def existing_namespaces(ip: str) -> set[str]:
    # `ip netns list` prints `NAME` or `NAME (id: N)`, one a line.
    return {line.split()[0] for line in _ip(ip, "netns", "list").splitlines() if line.strip()}


def _addresses(ip: str, namespace: str) -> list[str]:
    """The IPv4 addresses of the links that are up, apart from loopback's."""
    links: list[dict[str, Any]] = json.loads(_ip(ip, "-n", namespace, "-j", "addr", "show") or "[]")
    return [
        f"{info['local']}/{info['prefixlen']}"
        for link in links
        if link.get("ifname") != "lo" and "UP" in link.get("flags", [])
        for info in link.get("addr_info", [])
        if info.get("family") == "inet"
    ]


def _pids(ip: str, namespace: str) -> list[int]:
    return [int(pid) for pid in _ip(ip, "netns", "pids", namespace).split()]


def lab_status(lab: Lab) -> LabStatus:
    ip = check_can_run()
    status = LabStatus(lab)
    found = existing_namespaces(ip)
    for namespace in lab.namespaces:
        if namespace in found:
            status.present.append(namespace)
            status.addresses[namespace] = _addresses(ip, namespace)
            status.pids[namespace] = _pids(ip, namespace)
    return status


def lab_up(lab: Lab) -> LabStatus:
    """Create the two namespaces and the veth pair between them, loopback up in each. A lab
    already up is left as it is; a half-made one is removed and made again; on failure nothing
    is left."""
    check_lab(lab)
    status = lab_status(lab)
    if status.up:
        return status
    if status.present:
        lab_down(lab)
    ip = check_can_run()
    try:
        for namespace in lab.namespaces:
            _ip(ip, "netns", "add", namespace)
            _ip(ip, "-n", namespace, "link", "set", "lo", "up")
        # Both ends are created inside their namespaces: nothing appears in the host's.
        _ip(
            ip,
            "link",
            "add",
            CLIENT_END,
            "netns",
            lab.client_ns,
            "type",
            "veth",
            "peer",
            "name",
            SERVER_END,
            "netns",
            lab.server_ns,
        )
        for namespace, end, address in (
            (lab.client_ns, CLIENT_END, lab.client_address),
            (lab.server_ns, SERVER_END, lab.server_address),
        ):
            _ip(ip, "-n", namespace, "addr", "add", f"{address}/{lab.prefix}", "dev", end)
            _ip(ip, "-n", namespace, "link", "set", end, "up")
    except BaseException:
        with contextlib.suppress(LabError):
            lab_down(lab)
        raise
    return lab_status(lab)


def lab_down(lab: Lab, grace: float = 5.0) -> tuple[list[str], list[int]]:
    """Remove the lab's namespaces; the ones that are not there are no error. A process still
    inside (a server left running) would keep its namespace alive, unseen, after the name is
    gone: it is stopped first, SIGTERM then SIGKILL. Returns the namespaces removed and the
    processes stopped."""
    check_lab(lab)
    ip = check_can_run()
    found = existing_namespaces(ip)
    removed, stopped = [], []
    for namespace in lab.namespaces:
        if namespace not in found:
            continue
        stopped += _stop_inside(_pids(ip, namespace), grace)
        _ip(ip, "netns", "delete", namespace)  # the veth pair goes with it
        removed.append(namespace)
    return removed, stopped


def _stop_inside(pids: list[int], grace: float) -> list[int]:
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc = psutil.Process(pid)
            proc.terminate()
            procs.append(proc)
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=2)
    return [proc.pid for proc in procs]


def commands(lab: Lab, *, harness: str = "harness", port: int = 8000) -> tuple[str, str]:
    """The two commands to run in the lab: a server in its namespace, wrk from the other."""
    url = f"http://{lab.server_address}:{port}/healthz"
    return (
        f"ip netns exec {lab.server_ns} {harness} serve -t starlette "
        f"--host {lab.server_address} --port {port}",
        f"ip netns exec {lab.client_ns} {harness} run --allow-remote {url} "
        "-n starlette-veth --preset quick",
    )

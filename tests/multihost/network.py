"""A test network of virtual hosts: one Linux bridge and one network namespace per host, joined by veth pairs, on a
private /24 that no interface of the machine uses. Every process of a host runs inside its namespace
(`ip netns exec`) and reaches the others only through their bridge addresses. The test process itself stays in the
machine's namespace, where the bridge has the first address of the subnet (an operator's desk on the same switch).

Names carry this test process's PID (`mh<pid>...`), so parallel runs never collide, and a run that died without its
finalizers is cleaned up by the next one (its PID is gone). `close()` kills every process still inside a namespace,
then deletes the namespaces and the bridge: nothing is left behind, also when a test fails."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SUBNET_POOL = ipaddress.ip_network("10.77.0.0/16")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def missing_reason() -> str | None:
    """Why this machine cannot build the test network, or None."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces, a bridge and veth pairs (CI runs as root)"
    try:
        ip("netns", "list")
    except (OSError, subprocess.CalledProcessError) as err:
        return f"`ip netns` is not usable here: {err}"
    return None


@dataclass
class Host:
    name: str
    netns: str
    address: str
    veth: str  # the bridge side of the host's link, in the machine's namespace

    def exec_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns]


@dataclass
class Network:
    tag: str = field(default_factory=lambda: f"mh{os.getpid()}")
    hosts: dict[str, Host] = field(default_factory=dict)
    processes: list[subprocess.Popen] = field(default_factory=list)
    subnet: ipaddress.IPv4Network | None = None
    bridge: str = ""
    faults: set[tuple[str, ...]] = field(default_factory=set)  # what `restore()` undoes

    # -- building --------------------------------------------------------------------------------------------
    def create(self, names: Sequence[str]) -> None:
        reap_abandoned()
        self.subnet = free_subnet()
        addresses = list(self.subnet.hosts())
        self.bridge = f"{self.tag}br"
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{addresses[0]}/{self.subnet.prefixlen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for i, name in enumerate(names, start=1):
            host = Host(name, f"{self.tag}-{name}", str(addresses[i]), f"{self.tag}h{i}")
            ip("netns", "add", host.netns)
            self.hosts[name] = host
            ip("link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
            ip("link", "set", host.veth, "master", self.bridge, "up")
            ip("-n", host.netns, "link", "set", "lo", "up")
            ip("-n", host.netns, "addr", "add", f"{host.address}/{self.subnet.prefixlen}", "dev", "eth0")
            ip("-n", host.netns, "link", "set", "eth0", "up")

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    # -- processes -------------------------------------------------------------------------------------------
    def spawn(self, host: str, argv: Sequence[str], log: Path, env: dict[str, str] | None = None, **kw):
        """Start `argv` inside `host`'s namespace, in a session of its own, output appended to `log`."""
        out = open(log, "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            [*self.hosts[host].exec_prefix(), *argv],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kw,
        )
        out.close()
        self.processes.append(proc)
        return proc

    def run(self, host: str, argv: Sequence[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run([*self.hosts[host].exec_prefix(), *argv], capture_output=True, text=True, **kw)

    # -- faults ----------------------------------------------------------------------------------------------
    def cut(self, host: str) -> None:
        """Unplug the host: its port on the switch goes dark. Its own interface stays up and keeps its routes, so
        its packets vanish silently, as on a real cut (no quick 'network unreachable')."""
        ip("link", "set", self.hosts[host].veth, "down")
        self.faults.add(("cut", host))

    def heal(self, host: str) -> None:
        ip("link", "set", self.hosts[host].veth, "up")
        self.faults.discard(("cut", host))

    def separate(self, a: str, b: str) -> None:
        """A partition between two hosts only: each drops what it would send to the other (blackhole routes)."""
        ip("-n", self.hosts[a].netns, "route", "add", "blackhole", f"{self.hosts[b].address}/32")
        ip("-n", self.hosts[b].netns, "route", "add", "blackhole", f"{self.hosts[a].address}/32")
        self.faults.add(("separate", a, b))

    def join(self, a: str, b: str) -> None:
        ip("-n", self.hosts[a].netns, "route", "del", "blackhole", f"{self.hosts[b].address}/32", check=False)
        ip("-n", self.hosts[b].netns, "route", "del", "blackhole", f"{self.hosts[a].address}/32", check=False)
        self.faults.discard(("separate", a, b))

    def delay(self, host: str, ms: int) -> str | None:
        """Delay every packet the host sends by `ms` (tc netem on its interface): each round trip to it takes `ms`
        longer. Returns why not when the kernel has no netem."""
        done = self.run(host, ["tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", f"{ms}ms"])
        if done.returncode != 0:
            return f"tc netem is not available in this kernel ({done.stderr.strip() or done.stdout.strip()})"
        self.faults.add(("delay", host))
        return None

    def undelay(self, host: str) -> None:
        self.run(host, ["tc", "qdisc", "del", "dev", "eth0", "root"])
        self.faults.discard(("delay", host))

    def restore(self) -> None:
        """Undo every cut, partition and delay still in place."""
        for fault in list(self.faults):
            kind, *hosts = fault
            if kind == "cut":
                self.heal(hosts[0])
            elif kind == "separate":
                self.join(hosts[0], hosts[1])
            else:
                self.undelay(hosts[0])

    # -- teardown --------------------------------------------------------------------------------------------
    def close(self) -> None:
        self.restore()
        for proc in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        for host in self.hosts.values():
            remove_namespace(host.netns)
        if self.bridge:
            ip("link", "del", self.bridge, check=False)
        self.hosts.clear()


def remove_namespace(netns: str) -> None:
    """Kill whatever still runs inside `netns` (nothing should), then delete it; its veth pair goes with it."""
    for _ in range(3):
        found = ip("netns", "pids", netns, check=False)
        pids = [int(p) for p in found.stdout.split()]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)
    ip("netns", "del", netns, check=False)


def reap_abandoned() -> None:
    """Namespaces and bridges of earlier runs whose test process is gone (killed before its finalizers ran)."""
    for line in ip("netns", "list").stdout.splitlines():
        match = re.match(r"(mh(\d+))-\S+", line)
        if match and not _alive(int(match.group(2))):
            remove_namespace(line.split()[0])
    for line in ip("-o", "link", "show", "type", "bridge").stdout.splitlines():
        match = re.search(r": (mh(\d+)br)[:@]", line)
        if match and not _alive(int(match.group(2))):
            ip("link", "del", match.group(1), check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_subnet() -> ipaddress.IPv4Network:
    """A /24 of 10.77.0.0/16 that no interface or route of the machine touches."""
    used = set()
    for line in ip("-o", "-4", "addr", "show").stdout.splitlines() + ip("-4", "route", "show").stdout.splitlines():
        for found in re.findall(r"(\d+\.\d+\.\d+\.\d+)(?:/(\d+))?", line):
            with contextlib.suppress(ValueError):
                used.add(ipaddress.ip_network(f"{found[0]}/{found[1] or 32}", strict=False))
    candidates = list(SUBNET_POOL.subnets(new_prefix=24))
    start = os.getpid() % len(candidates)  # parallel runs start their search at different places
    for candidate in candidates[start:] + candidates[:start]:
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise RuntimeError("no free /24 in 10.77.0.0/16 for the test network")

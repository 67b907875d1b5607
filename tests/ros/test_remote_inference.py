"""The policy on one host, the executor and the robot on another, over a real network link.

Two Linux network namespaces joined by a veth pair stand for a GPU host (the policy node) and
the robot computer (the chunk executor, the robot stand-in and an observer that reports what
the executor says and what the robot receives). Nothing crosses between them but UDP over the
link, so cutting the link (`ip link set ... down`) cuts the policy off exactly as a pulled
cable would. Cameras travel as JPEG (`image_transport:=compressed`), as they would over a LAN.

DDS across the link, as the README sets up two computers: ROS_DOMAIN_ID from the suite's conftest,
ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET and the other host in ROS_STATIC_PEERS (the namespaces have
no multicast route, like many robot networks). Both namespaces share one /dev/shm, where Fast
DDS's shared-memory transport keeps its ports; two computers do not, so the processes here use
UDP only (FASTDDS_BUILTIN_TRANSPORTS=UDPv4). Processes start only once both ends of the link
report carrier: without that wait, participants made right after the link came up were, in most
runs here, never reached by sensor data from the other host.

Needs root for `ip netns`; skipped, saying so, only where namespaces cannot be made.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from vla_core.bringup_checkpoint import write_initial_checkpoint
from vla_core.embodiment import load_embodiment
from vla_msgs.msg import PolicyStatus

from .conftest import PEERS, RosProcess

pytestmark = [pytest.mark.slow, pytest.mark.ros]
SO101 = load_embodiment("so101")
START = [0.0, -0.5, 0.5, 0.3, 0.0, 0.5]
CHUNK_TIMEOUT = 1.5  # s, the executor's watchdog on chunks (its default)
GPU_ADDRESS, ROBOT_ADDRESS = "10.231.0.1", "10.231.0.2"  # a /30 that exists only inside the two namespaces


def ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def checked_ip(*args: str) -> None:
    result = ip(*args)
    if result.returncode:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")


@dataclass(frozen=True)
class TwoHosts:
    """The GPU host and the robot computer: one namespace each, a veth pair between them."""

    gpu: str
    robot: str
    gpu_link: str
    robot_link: str

    def set_link(self, up: bool) -> None:
        """Down on one end takes the carrier from both: nothing crosses either way."""
        checked_ip("-n", self.gpu, "link", "set", self.gpu_link, "up" if up else "down")
        if up:
            self.wait_until_up()

    def wait_until_up(self, timeout: float = 10.0) -> None:
        """Both ends operationally up (the kernel reports carrier with a delay); see the module
        docstring for why DDS participants must not start before."""
        deadline = time.monotonic() + timeout
        for namespace, link in ((self.gpu, self.gpu_link), (self.robot, self.robot_link)):
            while "state UP" not in ip("-n", namespace, "link", "show", "dev", link).stdout:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{link} in {namespace} is not up after {timeout} s")
                time.sleep(0.05)

    def add_delay(self, milliseconds: int) -> str | None:
        """netem delay on both ends (each direction); the reason it cannot, or None."""
        for namespace, link in ((self.gpu, self.gpu_link), (self.robot, self.robot_link)):
            result = subprocess.run(["ip", "netns", "exec", namespace, "tc", "qdisc", "replace", "dev", link, "root",
                                     "netem", "delay", f"{milliseconds}ms"], capture_output=True, text=True,
                                    check=False)
            if result.returncode:
                return f"tc qdisc ... netem failed: {result.stderr.strip() or result.stdout.strip()}"
        return None


@pytest.fixture
def hosts() -> Iterator[TwoHosts]:
    tag = str(os.getpid())
    two = TwoHosts(f"vla_gpu_{tag}", f"vla_robot_{tag}", f"vg{tag}", f"vr{tag}")
    if os.geteuid() != 0:
        pytest.skip("network namespaces (ip netns add) need root; run as root or in CI to test remote inference")
    made = ip("netns", "add", two.gpu)
    if made.returncode and any(s in made.stderr for s in ("not permitted", "Permission denied")):
        pytest.skip(f"ip netns add is not permitted here: {made.stderr.strip()}")
    try:
        if made.returncode:
            raise RuntimeError(f"ip netns add {two.gpu} failed: {made.stderr.strip()}")
        checked_ip("netns", "add", two.robot)
        checked_ip("-n", two.gpu, "link", "add", two.gpu_link, "type", "veth", "peer", "name", two.robot_link,
                   "netns", two.robot)
        for namespace, link, address in ((two.gpu, two.gpu_link, GPU_ADDRESS), (two.robot, two.robot_link,
                                                                                ROBOT_ADDRESS)):
            checked_ip("-n", namespace, "link", "set", "lo", "up")
            checked_ip("-n", namespace, "addr", "add", f"{address}/30", "dev", link)
            checked_ip("-n", namespace, "link", "set", link, "up")
        two.wait_until_up()
        yield two
    finally:  # deleting a namespace deletes its end of the veth pair, and with it the other end
        for namespace in (two.gpu, two.robot):
            ip("netns", "del", namespace)


@pytest.fixture
def start_on(hosts: TwoHosts, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., RosProcess]]:
    """Start `python argv...` inside one host's namespace; all are stopped before the namespaces go."""
    started: list[RosProcess] = []
    peers = {hosts.gpu: ROBOT_ADDRESS, hosts.robot: GPU_ADDRESS}

    def start(namespace: str, *argv: str, ready_line: str | None = "READY") -> RosProcess:
        with monkeypatch.context() as env:
            env.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "SUBNET")
            env.setenv("ROS_STATIC_PEERS", peers[namespace])
            env.setenv("FASTDDS_BUILTIN_TRANSPORTS", "UDPv4")  # one /dev/shm for both: see the module docstring
            process = RosProcess(["ip", "netns", "exec", namespace, sys.executable, *argv], ready_line)
        started.append(process)
        process.wait_ready(60.0)
        return process

    yield start
    for process in started:
        process.stop()
        print(f"--- {' '.join(process.argv[3:])} (last lines; pytest shows them when the test fails)")
        print("\n".join(line for line in process.lines[-40:] if not line.startswith(("STATUS", "DIAG", "COMMAND"))))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_initial_checkpoint([SO101.source], tmp_path_factory.mktemp("remote") / "checkpoint")


def records(process: RosProcess, kind: str, after: float = 0.0) -> list[dict]:
    """The observer's `kind` lines (STATUS, DIAG, COMMAND) that arrived at or after `after`."""
    found = [json.loads(line[len(kind) + 1:]) for line in list(process.lines) if line.startswith(kind + " ")]
    return [record for record in found if record["t"] >= after]


def wait_for(process: RosProcess, kind: str, predicate: Callable[[dict], bool], timeout: float, what: str,
             after: float = 0.0) -> dict:
    """The first `kind` record since `after` that satisfies `predicate`, waiting up to `timeout` s
    on the observer's output (each line is read once)."""
    read = 0

    def found() -> dict | None:
        nonlocal read
        lines, read = process.lines[read:], len(process.lines)
        for line in lines:
            if line.startswith(kind + " "):
                record = json.loads(line[len(kind) + 1:])
                if record["t"] >= after and predicate(record):
                    return record
        return None

    match = process.wait_for_output(found, timeout)
    if match is not None:
        return match
    last = (records(process, kind) or [None])[-1]
    raise AssertionError(f"{what} within {timeout} s; last {kind}: {last}")


def bring_up(start_on: Callable[..., RosProcess], hosts: TwoHosts, checkpoint: Path) -> dict[str, RosProcess]:
    """Robot, executor and observer on the robot computer; the policy on the GPU host."""
    policy = start_on(hosts.gpu, "-m", "vla_policy_node.policy_node", "--ros-args",
                      "-p", f"checkpoint:={checkpoint}", "-p", f"embodiment:={SO101.source}",
                      "-p", "image_transport:=compressed", "-p", "torch_threads:=1",
                      "-p", "instruction:=pick up the cube", ready_line=None)
    robot = start_on(hosts.robot, str(PEERS / "robot_standin.py"), "--joints", *SO101.joint_names,
                     "--cameras", "front", "wrist", "--image-size", "224", "--rate", "50",
                     "--command-topic", SO101.command_topic, "--position", *map(str, START),
                     "--image-transport", "compressed")
    observer = start_on(hosts.robot, str(PEERS / "graph_observer.py"), "--command-topic", SO101.command_topic)
    executor = start_on(hosts.robot, "-m", "vla_policy_node.executor_node", "--ros-args",
                        "-p", f"embodiment:={SO101.source}", "-p", "status_rate_hz:=10.0",
                        "-p", f"chunk_timeout:={CHUNK_TIMEOUT}", ready_line=None)
    return {"robot": robot, "observer": observer, "executor": executor, "policy": policy}


def running_on_chunks(count: int) -> Callable[[dict], bool]:
    return lambda s: s["state"] == PolicyStatus.STATE_RUNNING and s["chunks"] >= count


def test_chunks_cross_the_link_and_a_cut_link_holds_the_robot_until_it_returns(start_on, hosts, checkpoint) -> None:
    nodes = bring_up(start_on, hosts, checkpoint)
    observer = nodes["observer"]
    running = wait_for(observer, "STATUS", running_on_chunks(3), 120.0, "3 chunks across the link")
    assert any(line.startswith("TRAJECTORY") for line in nodes["robot"].lines), "commands reach the robot"
    diagnostics = wait_for(observer, "DIAG", lambda d: "network_latency_median_s" in d["values"], 5.0,
                           "the network's share of latency in /diagnostics", after=running["t"])["values"]
    network, round_trip = float(diagnostics["network_latency_median_s"]), float(diagnostics["round_trip_median_s"])
    assert 0.0 <= network <= round_trip, diagnostics
    status = wait_for(observer, "STATUS", lambda s: s["round_trip_median"] > 0, 5.0, "round trips in the status",
                      after=running["t"])
    assert 0.0 <= status["network_latency_median"] <= status["round_trip_median"] < 5.0, status
    assert network < 0.5, f"an unloaded veth link costs far less than {network} s per round trip"
    assert any("chunk request round trip" in line for line in nodes["executor"].lines), "logged too"

    cut_at = time.time()
    hosts.set_link(False)
    held = wait_for(observer, "STATUS", lambda s: s["state"] == PolicyStatus.STATE_HOLDING, CHUNK_TIMEOUT + 5.0,
                    "a watchdog hold after the link was cut", after=cut_at)
    assert "no chunk" in held["detail"], held
    assert held["t"] - cut_at <= CHUNK_TIMEOUT + 1.5, "held within the chunk watchdog's limit (plus status period)"
    assert held["counters"].get("watchdog:chunks", 0) >= 1, held["counters"]
    # three seconds of the cut link, counted by the executor's own status reports
    wait_for(observer, "STATUS", lambda s: s["t"] >= held["t"] + 3.0, 10.0, "3 s of status with the link cut",
             after=held["t"])
    restore_at = time.time()
    during = records(observer, "STATUS", held["t"])
    assert all(s["state"] == PolicyStatus.STATE_HOLDING for s in during), [s["detail"] for s in during]
    assert {s["chunks"] for s in during} == {held["chunks"]}, "no chunk crosses a cut link"
    commands = np.array([c["positions"] for c in records(observer, "COMMAND", held["t"]) if c["t"] < restore_at])
    assert len(commands) >= 0.5 * SO101.control_rate_hz * (restore_at - held["t"]), "the hold is commanded every tick"
    np.testing.assert_array_equal(commands, np.broadcast_to(commands[0], commands.shape),
                                  "while held, the robot gets one fixed target and no motion")

    hosts.set_link(True)
    wait_for(observer, "STATUS", lambda s: s["state"] == PolicyStatus.STATE_RUNNING and s["chunks"] > held["chunks"],
             30.0, "running on fresh chunks after the link came back", after=restore_at)
    assert all(process.alive for process in nodes.values()), {n: p.lines[-5:] for n, p in nodes.items()}


def test_async_execution_absorbs_network_delay(start_on, hosts, checkpoint) -> None:
    delay_ms = 60  # each way: 120 ms more per round trip, less than the 8 rows (267 ms) async has to wait
    reason = hosts.add_delay(delay_ms)
    if reason is not None:
        pytest.skip(f"network delay needs the kernel's netem qdisc (sch_netem), missing here: {reason}")
    nodes = bring_up(start_on, hosts, checkpoint)
    observer = nodes["observer"]
    before = wait_for(observer, "STATUS", running_on_chunks(5), 120.0, "5 chunks across a delayed link")
    after = wait_for(observer, "STATUS", lambda s: s["t"] >= before["t"] + 5.0, 15.0, "5 s of status",
                     after=before["t"])
    diagnostics = records(observer, "DIAG")[-1]["values"]
    assert float(diagnostics["network_latency_median_s"]) >= 0.9 * 2 * delay_ms / 1e3, diagnostics
    commands = records(observer, "COMMAND", before["t"])
    commands = [c for c in commands if c["t"] <= after["t"]]
    window = after["t"] - before["t"]
    assert len(commands) >= 0.8 * SO101.control_rate_hz * window, f"{len(commands)} commands in {window:.1f} s"
    from_chunks = after["counters"]["commands"] - before["counters"]["commands"]
    assert from_chunks >= 0.95 * len(commands) - 0.2 * SO101.control_rate_hz, "every tick runs a chunk row"
    assert after["counters"].get("starved_ticks", 0) == before["counters"].get("starved_ticks", 0), after["counters"]
    assert after["state"] == PolicyStatus.STATE_RUNNING, after["detail"]

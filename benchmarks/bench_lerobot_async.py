"""This project's policy node against LeRobot's own async inference, one chunk round trip each,
in one run on one machine: the same tiny ACT (scripts/make_tiny_lerobot_act.py: one 64x64
camera, 6 joints, 20-row chunks), one torch thread on both sides.

Ours: a client calls the policy node's `GetActionChunk` over DDS (the node_overhead path) while
the robot stand-in streams two 224x224 cameras and joint states at 50 Hz; the node assembles
the observation and asks the LeRobot backend's child process (LeRobot's environment, Unix
socket) for the chunk, re-expressed in the SO-101's action space.

Theirs: LeRobot 0.4.4's `PolicyServer` (`python -m lerobot.async_inference.policy_server`,
`--inference_latency=0` so it never pads its answer) and its `RobotClient` with a stand-in robot
(benchmarks/lerobot_async_client.py): per chunk, the observation (one 224x224 camera, 6 joints)
pickled and streamed over gRPC, then `GetActions` returns the pickled chunk.

The designs differ in one place that the numbers carry: our observation reaches the node on its
topics before the request (not in the round trip; the streaming costs CPU during our rounds),
LeRobot's travels with each request (in the round trip, timed apart as "send"). Our stand-in
is paused (SIGSTOP) during LeRobot's rounds, so theirs run on the quieter machine. The two run
in alternating rounds, the order swapped every round, so a shared machine's drifting load falls
on both; the ratio row is per-round medians, ours / theirs (lower is better for this project).
Skipped, with the reason, where the LeRobot environment or its gRPC packages are absent
(scripts/lerobot_check.sh builds it).
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from statistics import median

import rclpy

from benchmarks.measure import Measurement
from benchmarks.ros_stack import so101_stack
from vla_core.backends.lerobot_backend import default_lerobot_python
from vla_msgs.srv import GetActionChunk

ROOT = Path(__file__).resolve().parents[1]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # what the node's torch_threads:=1 hands its LeRobot child


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"LeRobot's policy server exited with code {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.2)
    raise RuntimeError(f"LeRobot's policy server did not listen on port {port} within {timeout:.0f} s")


@contextlib.contextmanager
def lerobot_async(python: str, policy: Path, scratch: Path) -> Iterator[Callable[[int], dict[str, list[float]]]]:
    """LeRobot's policy server and robot client up, the policy loaded; yields `measure(n)`, which
    times n chunks through them. Their logs (LeRobot writes logs/ into its working directory)
    stay in `scratch`."""
    port = _free_port()
    env = {**os.environ, **ONE_THREAD}
    with open(scratch / "policy_server.log", "w") as server_log:
        server = subprocess.Popen([python, "-m", "lerobot.async_inference.policy_server", "--host=127.0.0.1",
                                   f"--port={port}", "--fps=30", "--inference_latency=0", "--obs_queue_timeout=2"],
                                  cwd=scratch, env=env, stdout=server_log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    client = None
    try:
        _wait_for_port(port, server, 120.0)
        client = subprocess.Popen([python, str(ROOT / "benchmarks" / "lerobot_async_client.py"),
                                   f"127.0.0.1:{port}", str(policy)], cwd=scratch, env=env, text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        for line in client.stdout:
            if line.strip() == "ready":
                break
        else:
            raise RuntimeError(f"LeRobot's robot client exited (code {client.wait()}) before the server loaded "
                               f"the policy; see {scratch / 'policy_server.log'}")

        def measure(count: int) -> dict[str, list[float]]:
            client.stdin.write(f"{count}\n")
            client.stdin.flush()
            for answer in client.stdout:
                if answer.startswith("{"):
                    return json.loads(answer)
            raise RuntimeError(f"LeRobot's robot client exited with code {client.wait()} while measuring")

        yield measure
    finally:
        if client is not None:
            with contextlib.suppress(OSError):
                client.stdin.close()
            try:
                client.wait(timeout=30)
            except subprocess.TimeoutExpired:
                client.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def _lerobot_async_missing(python: str) -> str | None:
    """Why LeRobot's async inference cannot run in `python`, or None. (Importing its modules
    writes logs/ into the working directory: the probe runs in a scratch one.)"""
    if not Path(python).exists():
        return f"no LeRobot environment at {python} (scripts/lerobot_check.sh builds it)"
    with tempfile.TemporaryDirectory() as scratch:
        probe = subprocess.run([python, "-c", "import grpc, lerobot.async_inference.policy_server, "
                                              "lerobot.async_inference.robot_client"],
                               capture_output=True, text=True, timeout=300, cwd=scratch)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return f"LeRobot's async inference does not import in {python} ({last}); rebuild it with scripts/lerobot_check.sh"
    return None


class NodeClient:
    """GetActionChunk calls to the policy node, one at a time, timed from request to answer."""

    def __init__(self) -> None:
        rclpy.init()
        self.node = rclpy.create_node("bench_lerobot_async")
        self.client = self.node.create_client(GetActionChunk, "vla_policy/get_action_chunk")

    def answered(self, timeout: float) -> tuple[float, float] | None:
        """(round trip, the backend's latency inside) in ms of one request, or None if refused."""
        started = time.perf_counter()
        future = self.client.call_async(GetActionChunk.Request())
        rclpy.spin_until_future_complete(self.node, future, timeout_sec=timeout)
        elapsed = (time.perf_counter() - started) * 1e3
        response = future.result()
        if response is None or not response.success:
            return None
        return elapsed, response.chunk.inference_latency * 1e3

    def until_answered(self, timeout: float) -> None:
        """Wait for the first accepted request (streams assembled, backend loaded)."""
        deadline = time.monotonic() + timeout
        if not self.client.wait_for_service(timeout_sec=timeout):
            raise RuntimeError(f"the policy node's chunk service did not come up within {timeout:.0f} s")
        while time.monotonic() < deadline:
            if self.answered(10.0) is not None:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the policy node refused every chunk request for {timeout:.0f} s")

    def close(self) -> None:
        self.node.destroy_node()
        rclpy.shutdown()


def run(quick: bool) -> list[Measurement]:
    python = default_lerobot_python()
    missing = _lerobot_async_missing(python)
    if missing:
        print(f"  skipped: {missing}")
        return []
    rounds, per_round = (3, 5) if quick else (10, 20)
    ours, ours_child, theirs, theirs_send, theirs_actions, ratio = [], [], [], [], [], []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="vla_bench_lerobot_async_") as tmp:
        scratch = Path(tmp)
        policy = scratch / "act"
        subprocess.run([python, str(ROOT / "scripts" / "make_tiny_lerobot_act.py"), str(policy)], check=True,
                       timeout=600, capture_output=True)
        started: list[subprocess.Popen] = []
        with lerobot_async(python, policy, scratch) as lerobot_measure, \
                so101_stack(30.0, executor=False, policy_params=("torch_threads:=1",), checkpoint=str(policy),
                            started=started):
            standin = started[0]
            node = NodeClient()
            try:
                node.until_answered(180.0)
                lerobot_measure(3)  # warm-up
                for index in range(rounds):
                    ours_round: list[float] = []
                    theirs_round: dict[str, list[float]] = {}
                    for side in (("ours", "theirs") if index % 2 == 0 else ("theirs", "ours")):
                        if side == "ours":
                            os.killpg(standin.pid, signal.SIGCONT)
                            node.until_answered(30.0)  # the streams fresh again after the pause
                            for _ in range(3):  # warm-up
                                node.answered(10.0)
                            while len(ours_round) < per_round:
                                answer = node.answered(10.0)
                                if answer is None:
                                    raise RuntimeError("the policy node refused a chunk request while measuring")
                                ours_round.append(answer[0])
                                ours_child.append(answer[1])
                        else:
                            os.killpg(standin.pid, signal.SIGSTOP)
                            lerobot_measure(3)  # warm-up, as ours has after its pause
                            theirs_round = lerobot_measure(per_round)
                    os.killpg(standin.pid, signal.SIGCONT)
                    ours += ours_round
                    theirs += theirs_round["total"]
                    theirs_send += theirs_round["send"]
                    theirs_actions += theirs_round["actions"]
                    ratio.append(median(ours_round) / median(theirs_round["total"]))
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(standin.pid, signal.SIGCONT)  # so the stack's SIGINT can end it
                node.close()
    notes = {"policy": "tiny ACT (dim 32, 1+1 layers, 64x64 camera, 20 rows), 1 torch thread each side",
             "rounds": rounds, "per_round": per_round, "load_avg_1min_before": round(load_before, 1),
             "load_avg_1min_after": round(os.getloadavg()[0], 1)}
    return [
        Measurement.from_samples("ours: GetActionChunk round trip (policy node over DDS, LeRobot child)", "ms", ours,
                                 **notes),
        Measurement.from_samples("  of which the LeRobot child (socket round trip, predicts inside)", "ms", ours_child),
        Measurement.from_samples("LeRobot async inference: observation out + chunk back (gRPC)", "ms", theirs,
                                 server="lerobot.async_inference.policy_server 0.4.4, inference_latency=0",
                                 client="its RobotClient: send_observation + stub.GetActions, stand-in robot"),
        Measurement.from_samples("  of which send_observation (pickled, streamed)", "ms", theirs_send),
        Measurement.from_samples("  of which GetActions (server predicts inside)", "ms", theirs_actions),
        Measurement.from_samples("ours / LeRobot async (round medians)", "x", ratio, target="lower is better for us",
                                 ratio_of_overall_medians=round(median(ours) / median(theirs), 3)),
    ]

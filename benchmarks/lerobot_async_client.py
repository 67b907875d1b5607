"""LeRobot's side of bench_lerobot_async: LeRobot 0.4.4's own `RobotClient` talking to its own
`PolicyServer` (started by the benchmark as `python -m lerobot.async_inference.policy_server`)
over its real gRPC protocol, with a stand-in robot instead of hardware.

    python benchmarks/lerobot_async_client.py SERVER_ADDRESS POLICY_DIR

Runs in the LeRobot environment's Python (vla_core is not installed there). The robot is a
LeRobot `Robot` registered through LeRobot's own plugin path (`RobotConfig.register_subclass`,
found by `make_robot_from_config`): six `<joint>.pos` values and one 224x224 RGB camera `front`,
the SO-101 stand-in's camera size, pre-drawn frames so no time goes to drawing them.
`RobotClient.start()` does the handshake (`Ready`, `SendPolicyInstructions`: the server loads
the policy); then each timed chunk is what the client's two threads do for one chunk, done in
sequence: `robot.get_observation()`, `RobotClient.send_observation` (pickled, streamed in
chunks over `SendObservations`, `must_go` so the server's similarity filter never drops it),
`stub.GetActions` (the server predicts: resize, pre-processor, `predict_action_chunk`,
post-processor per row, pickled `TimedAction`s) and unpickling the answer, as
`RobotClient.receive_actions` does.

Prints "ready" once the server holds the policy; then for every line "N" on stdin, times N chunks
and prints one JSON line {"total": [...], "send": [...], "actions": [...]} in milliseconds.
"""
from __future__ import annotations

import json
import pickle  # noqa: S403 - LeRobot's own protocol pickles; both ends are LeRobot's code on this machine
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from lerobot.async_inference.configs import RobotClientConfig
from lerobot.async_inference.helpers import TimedObservation
from lerobot.async_inference.robot_client import RobotClient
from lerobot.robots.config import RobotConfig
from lerobot.robots.robot import Robot
from lerobot.transport import services_pb2

JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
IMAGE_SHAPE = (224, 224, 3)
TASK = "pick up the cube"
CHUNK_ROWS = 20


@RobotConfig.register_subclass("vla_bench_standin")
@dataclass(kw_only=True)
class StandInRobotConfig(RobotConfig):
    """The stand-in robot's LeRobot config: nothing to configure."""


class StandInRobot(Robot):
    """Joint positions and a camera frame, as a connected SO-101 follower would give them."""

    config_class = StandInRobotConfig
    name = "vla_bench_standin"

    def __init__(self, config: StandInRobotConfig) -> None:
        super().__init__(config)
        rng = np.random.default_rng(0)
        self._frames = [rng.integers(0, 256, IMAGE_SHAPE, dtype=np.uint8) for _ in range(4)]
        self._state = rng.uniform(-0.5, 0.5, len(JOINTS))
        self._reads = 0
        self._connected = False

    @property
    def observation_features(self) -> dict[str, Any]:
        return {**{f"{joint}.pos": float for joint in JOINTS}, "front": IMAGE_SHAPE}

    @property
    def action_features(self) -> dict[str, Any]:
        return {f"{joint}.pos": float for joint in JOINTS}

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self, calibrate: bool = True) -> None:
        self._connected = True

    @property
    def is_calibrated(self) -> bool:
        return True

    def calibrate(self) -> None:
        """Nothing to calibrate."""

    def configure(self) -> None:
        """Nothing to configure."""

    def get_observation(self) -> dict[str, Any]:
        self._reads += 1
        observation: dict[str, Any] = {f"{joint}.pos": float(value) for joint, value in zip(JOINTS, self._state)}
        observation["front"] = self._frames[self._reads % len(self._frames)]
        return observation

    def send_action(self, action: dict[str, Any]) -> dict[str, Any]:
        return action

    def disconnect(self) -> None:
        self._connected = False


def one_chunk(client: RobotClient, timestep: int) -> tuple[float, float, float]:
    """Milliseconds for one observation out and its chunk back: total, the send, the GetActions."""
    started = time.perf_counter()
    raw = client.robot.get_observation()
    raw["task"] = TASK
    observation = TimedObservation(timestamp=time.time(), observation=raw, timestep=timestep, must_go=True)
    if not client.send_observation(observation):
        raise RuntimeError(f"LeRobot's client could not send observation #{timestep}")
    sent = time.perf_counter()
    answer = client.stub.GetActions(services_pb2.Empty())
    if not answer.data:
        raise RuntimeError(f"LeRobot's server answered observation #{timestep} with no actions")
    actions = pickle.loads(answer.data)  # noqa: S301 - LeRobot's server, as RobotClient.receive_actions does
    done = time.perf_counter()
    if len(actions) != CHUNK_ROWS or tuple(actions[0].get_action().shape) != (len(JOINTS),):
        raise RuntimeError(f"LeRobot's server answered {len(actions)} actions of shape "
                           f"{tuple(actions[0].get_action().shape) if actions else ()}, expected {CHUNK_ROWS} x {len(JOINTS)}")
    return (done - started) * 1e3, (sent - started) * 1e3, (done - sent) * 1e3


def main(address: str, policy: str) -> None:
    config = RobotClientConfig(policy_type="act", pretrained_name_or_path=policy, robot=StandInRobotConfig(),
                               actions_per_chunk=CHUNK_ROWS, task=TASK, server_address=address,
                               policy_device="cpu", fps=30)
    client = RobotClient(config)
    if not client.start():
        raise SystemExit(f"LeRobot's robot client could not reach the policy server at {address}")
    timestep = 0
    print("ready", flush=True)
    try:
        for line in sys.stdin:
            total, send, actions = [], [], []
            for _ in range(int(line)):
                timestep += 1
                sample = one_chunk(client, timestep)
                total.append(sample[0])
                send.append(sample[1])
                actions.append(sample[2])
            print(json.dumps({"total": total, "send": send, "actions": actions}), flush=True)
    finally:
        client.stop()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: lerobot_async_client.py SERVER_ADDRESS POLICY_DIR")
    main(sys.argv[1], sys.argv[2])

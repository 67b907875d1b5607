"""A policy node stand-in that serves scripted chunks, for executor tests over DDS.

Serves vla_msgs/GetActionChunk at `vla_policy/get_action_chunk` for an embodiment with an
end-effector-relative action space: every chunk is "stay at the chunk start" (identity rows)
plus a per-mode change, built from the chunk start the request implies (it reads joint states
and computes the start poses with the embodiment's kinematics, as the real policy node does).
The mode can be switched at run time with the std_msgs/String topic `scripted_policy/mode`:

- ok: identity rows (the robot stays where it is, the gripper opens);
- nan: NaN in row 3;
- far: a target 3 m away (beyond reach, workspace and jump limits);
- drift: the tool moves 2 mm further along x at every row (slow: within every velocity limit);
- refuse: success = false with a reason;
- idle: success = false with `idle` set, as the policy node answers when no goal runs.

    python scripted_policy.py --embodiment so101 --latency 0.05
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from vla_core.embodiment import load_embodiment
from vla_core.geometry import transform_to_pose7
from vla_core.runtime.decoding import ChunkDecoder
from vla_policy_node.chunk_messages import chunk_to_message
from vla_policy_node.node_main import run_node

from vla_msgs.srv import GetActionChunk


class ScriptedPolicy(Node):
    def __init__(self, embodiment: str, latency: float) -> None:
        super().__init__("scripted_policy")
        self.spec = load_embodiment(embodiment)
        self.decoder = ChunkDecoder(self.spec)
        self.latency = latency
        self.mode = "ok"
        self.joints: np.ndarray | None = None
        self.next_id = 1
        self.create_subscription(JointState, self.spec.joint_state_topic, self.on_joints, qos_profile_sensor_data)
        self.create_subscription(String, "scripted_policy/mode", self.on_mode, 10)
        self.create_service(GetActionChunk, "vla_policy/get_action_chunk", self.on_request)

    def on_joints(self, msg: JointState) -> None:
        index = {name: i for i, name in enumerate(msg.name)}
        if all(name in index for name in self.spec.joint_names):
            self.joints = np.array([msg.position[index[n]] for n in self.spec.joint_names])

    def on_mode(self, msg: String) -> None:
        self.mode = msg.data
        print(f"MODE {self.mode}", flush=True)

    def on_request(self, request: GetActionChunk.Request, response: GetActionChunk.Response):
        if self.mode == "refuse" or self.joints is None:
            response.success, response.message = False, "scripted refusal" if self.joints is not None else "no joints"
            return response
        if self.mode == "idle":
            response.success, response.message, response.idle = False, "no instruction (scripted)", True
            return response
        time.sleep(self.latency)
        start = self.decoder.start_from_joints(self.joints)
        rows = np.tile(_identity_row(self.spec.action_dim, len(self.spec.arms)), (self.spec.chunk_size, 1))
        if self.mode == "nan":
            rows[3, 0] = np.nan
        elif self.mode == "far":
            rows[:, 0] += 3.0
        elif self.mode == "drift":
            rows[:, 0] += 0.002 * np.arange(1, len(rows) + 1)
        response.chunk = chunk_to_message(
            self.next_id, rows, stamp=self.get_clock().now().nanoseconds / 1e9, frame_id=self.spec.base_frame,
            embodiment=self.spec.name, action_space=self.spec.action_space, channel_names=self.spec.channel_names,
            target_names=self.decoder.target_names(), dt=1.0 / self.spec.control_rate_hz,
            start_poses=np.array([transform_to_pose7(p) for p in start.poses]), start_positions=np.zeros(0),
            prefix_length=0, inference_latency=self.latency)
        response.success = True
        self.next_id += 1
        return response


def _identity_row(action_dim: int, arms: int) -> np.ndarray:
    """xyz 0, rotate-6D of the identity, gripper open (0), for each arm block."""
    block = np.array([0, 0, 0, 1, 0, 0, 0, 1, 0, 0], dtype=float)
    row = np.tile(block, arms)
    assert len(row) == action_dim, "scripted chunks assume an eef_relative profile with grippers"
    return row


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--embodiment", default="so101")
    parser.add_argument("--latency", type=float, default=0.0)
    args, ros_args = parser.parse_known_args()
    return run_node("scripted_policy", lambda: ScriptedPolicy(args.embodiment, args.latency),
                    [sys.argv[0], *ros_args], after_start=lambda node: print("READY", flush=True))


if __name__ == "__main__":
    sys.exit(main())

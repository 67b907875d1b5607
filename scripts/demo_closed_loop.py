"""The end-to-end path that exists today: the MuJoCo SO-101 pick scene (vla_sim), the policy
node and the chunk executor, each its own process over DDS on simulated time, for DEMO_SECONDS
of wall time; prints what the robot receives and whether the task succeeded.

The policy is the untrained bring-up checkpoint (`vla init-checkpoint`): it barely moves the
arm and does not pick the cube, but every part is real: MuJoCo cameras and joint states,
/clock, sensor QoS, nearest-stamp observations, inference, asynchronous execution with a
committed prefix, IK, safety, JointTrajectory into the simulated controller. A trained
checkpoint replaces this one when it exists.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from trajectory_msgs.msg import JointTrajectory
from vla_core.bringup_checkpoint import write_initial_checkpoint
from vla_core.embodiment import load_embodiment
from vla_core.sim.tasks import sample_pick_task
from vla_policy_node.status import STATE_NAMES

from vla_msgs.msg import PolicyStatus, TaskState

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / ".cache" / "bringup_so101"
DEMO_SECONDS = float(os.environ.get("DEMO_SECONDS", "20"))
SEED = 0


def main() -> int:
    os.environ.setdefault("ROS_DOMAIN_ID", "42")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    spec = load_embodiment("so101")
    if not (CHECKPOINT / "model.safetensors").is_file():
        write_initial_checkpoint(["so101"], CHECKPOINT)
    instruction = sample_pick_task(SEED, ("red", "green", "blue")).instruction()
    simulation = [sys.executable, "-m", "vla_sim.sim_node", "--ros-args", "-p", f"seed:={SEED}"]
    up = ["vla", "up", "--checkpoint", str(CHECKPOINT), "--use-sim-time", "--policy-param", f"instruction:={instruction}"]
    print(f"instruction: {instruction}", flush=True)
    processes = [subprocess.Popen(simulation), subprocess.Popen(up)]
    rclpy.init()
    node = rclpy.create_node("vla_demo")
    commands: list[JointTrajectory] = []
    status: dict[str, PolicyStatus] = {}
    task: list[TaskState] = []
    node.create_subscription(TaskState, "task_state", task.append, 10)
    node.create_subscription(JointTrajectory, spec.command_topic, commands.append,
                             QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    for name in ("vla_policy", "vla_executor"):
        node.create_subscription(PolicyStatus, f"{name}/status", lambda m, n=name: status.__setitem__(n, m), 10)
    try:
        end, next_print = time.monotonic() + DEMO_SECONDS, time.monotonic() + 1.0
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
            if time.monotonic() >= next_print:
                next_print += 1.0
                executor = status.get("vla_executor")
                line = f"commands received {len(commands):4d}"
                if task:
                    line += f" | sim time {task[-1].header.stamp.sec:3d} s | cube lifted {task[-1].success}"
                if executor is not None:
                    line += (f" | executor {STATE_NAMES[executor.state]}: {executor.detail} | chunks {executor.chunks}"
                             f" | inference median {executor.latency_median * 1e3:.0f} ms")
                print(line, flush=True)
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=15)
        node.destroy_node()
        rclpy.try_shutdown()
    if not commands:
        print("the simulated robot received no command: see the node output above", file=sys.stderr)
        return 1
    lifted = bool(task) and task[-1].success
    print(f"done: {len(commands)} JointTrajectory commands in {DEMO_SECONDS:.0f} s; "
          f"task {'succeeded' if lifted else 'not done (the bring-up checkpoint is untrained)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Control-loop jitter of the executor at 50 Hz while the policy node infers on the same machine.

The spacing of the JointTrajectory commands as they arrive on this machine (their stamps are
zero: a joint trajectory controller starts them on receipt), so it is the loop's timing plus
the local DDS hop's. Jitter = |spacing - 20 ms|.
The policy node (default architecture, two 224x224 cameras) answers the executor's
asynchronous requests meanwhile, so inference competes for the same CPU cores. Measured twice:
with normal scheduling, and with the executor's `realtime_priority` (SCHED_FIFO), as a robot
computer runs its control loop.
"""
from __future__ import annotations

import time

import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from trajectory_msgs.msg import JointTrajectory

from benchmarks.measure import Measurement
from benchmarks.ros_stack import so101_stack
from vla_msgs.msg import PolicyStatus

RATE_HZ = 50.0
PRIORITIES = (0, 50)  # normal scheduling, then SCHED_FIFO 50 as a robot computer runs its control loop


def _spin_for(node, seconds: float) -> None:
    end = node.get_clock().now().nanoseconds + seconds * 1e9
    while node.get_clock().now().nanoseconds < end:
        rclpy.spin_once(node, timeout_sec=0.05)


def _measure(seconds: float, priority: int) -> list[Measurement]:
    with so101_stack(RATE_HZ, policy_params=("torch_threads:=1",), executor_params=(f"realtime_priority:={priority}",)):
        rclpy.init()
        node = rclpy.create_node("bench_control_jitter")
        stamps: list[float] = []
        status: list[PolicyStatus] = []
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        node.create_subscription(JointTrajectory, "joint_trajectory_controller/joint_trajectory",
                                 lambda m: stamps.append(time.monotonic()), qos)
        node.create_subscription(PolicyStatus, "vla_executor/status", status.append, 10)
        _spin_for(node, 25.0)  # start-up: checkpoint load, warm-up, first chunks
        stamps.clear()
        _spin_for(node, seconds)
        node.destroy_node()
        rclpy.shutdown()
    spacing_ms = np.diff(np.array(stamps)) * 1e3
    jitter = np.abs(spacing_ms - 1e3 / RATE_HZ)
    last = status[-1]
    starved = next((int(kv.value) for kv in last.counters if kv.key == "starved_ticks"), 0)
    scheduling = f"SCHED_FIFO {priority}" if priority else "normal scheduling"
    return [
        Measurement.from_samples(f"control tick jitter at {RATE_HZ:g} Hz, {scheduling}", "ms", jitter.tolist(),
                                 target="p99 < 2 ms", p99_ms=round(float(np.percentile(jitter, 99)), 3),
                                 max_ms=round(float(jitter.max()), 3), starved_ticks=starved,
                                 inference_median_ms=round(last.latency_median * 1e3, 1),
                                 inference_p95_ms=round(last.latency_p95 * 1e3, 1)),
        Measurement.from_samples(f"tick spacing, {scheduling}", "ms", spacing_ms.tolist()),
    ]


def run(quick: bool) -> list[Measurement]:
    seconds = 10.0 if quick else 60.0
    return [m for priority in PRIORITIES for m in _measure(seconds, priority)]

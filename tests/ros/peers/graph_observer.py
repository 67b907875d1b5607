"""Reports what an executor says and what a robot receives, as JSON lines on stdout.

A test process cannot join the DDS graph of a process in another network namespace; this peer
runs inside that namespace (`ip netns exec ... python graph_observer.py`) and prints, each with
the wall-clock time of arrival (the test's clock too, on the same machine):

    STATUS {"t": ..., "state": 4, "detail": "...", "chunks": 12, "counters": {...},
            "round_trip_median": 0.05, "network_latency_median": 0.002}             executor ~/status
    DIAG {"t": ..., "values": {"network_latency_median_s": "0.0123", ...}}            its /diagnostics
    COMMAND {"t": ..., "positions": [...]}                                            first trajectory point

    python graph_observer.py --executor vla_executor --command-topic joint_trajectory_controller/joint_trajectory
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from trajectory_msgs.msg import JointTrajectory
from vla_msgs.msg import PolicyStatus
from vla_policy_node.node_main import run_node

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


def emit(kind: str, **fields) -> None:
    print(f"{kind} {json.dumps({'t': time.time(), **fields})}", flush=True)


class GraphObserver(Node):
    def __init__(self, executor: str, command_topic: str) -> None:
        super().__init__("graph_observer")
        self.executor_name = executor
        self.create_subscription(PolicyStatus, f"{executor}/status", self.on_status, RELIABLE)
        self.create_subscription(DiagnosticArray, "/diagnostics", self.on_diagnostics, RELIABLE)
        self.create_subscription(JointTrajectory, command_topic, self.on_command, RELIABLE)

    def on_status(self, msg: PolicyStatus) -> None:
        emit("STATUS", state=msg.state, detail=msg.detail, chunks=msg.chunks,
             counters={item.key: int(item.value) for item in msg.counters},
             round_trip_median=msg.round_trip_median, network_latency_median=msg.network_latency_median)

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if f"{self.executor_name}: executor" in status.name:
                emit("DIAG", values={item.key: item.value for item in status.values})

    def on_command(self, msg: JointTrajectory) -> None:
        if msg.points:
            emit("COMMAND", positions=list(msg.points[0].positions))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executor", default="vla_executor", help="node name of the executor")
    parser.add_argument("--command-topic", required=True)
    args, ros_args = parser.parse_known_args()
    return run_node("graph_observer", lambda: GraphObserver(args.executor, args.command_topic),
                    [sys.argv[0], *ros_args], after_start=lambda node: print("READY", flush=True))


if __name__ == "__main__":
    sys.exit(main())

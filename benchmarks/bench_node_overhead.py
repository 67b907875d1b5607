"""Time the policy node adds to the model's own inference: request in to chunk out, minus the
model's latency, with two 224x224 cameras streaming.

A client in this process calls GetActionChunk one request at a time; each answer carries the
model's own latency (`inference_latency`, encoding + denoising). The rest of the round trip is
the node's: the service over DDS both ways, taking the assembled observation, forward
kinematics of the chunk start, the prefix re-expression when there is one, and the message.
"""
from __future__ import annotations

import time

import rclpy

from benchmarks.measure import Measurement
from benchmarks.ros_stack import so101_stack
from vla_msgs.srv import GetActionChunk


def run(quick: bool) -> list[Measurement]:
    requests = 30 if quick else 200
    round_trips, models = [], []
    with so101_stack(30.0, executor=False, policy_params=("torch_threads:=1",)):
        rclpy.init()
        node = rclpy.create_node("bench_node_overhead")
        client = node.create_client(GetActionChunk, "vla_policy/get_action_chunk")
        if not client.wait_for_service(timeout_sec=60.0):
            raise RuntimeError("the policy node's chunk service did not come up within 60 s")
        answered = 0
        deadline = time.monotonic() + 120.0
        while answered < requests + 5 and time.monotonic() < deadline:
            started = time.perf_counter()
            future = client.call_async(GetActionChunk.Request())
            rclpy.spin_until_future_complete(node, future, timeout_sec=10.0)
            elapsed = time.perf_counter() - started
            response = future.result()
            if response is None or not response.success:
                time.sleep(0.1)  # streams not assembled yet
                continue
            answered += 1
            if answered > 5:  # the first answers include start-up effects
                round_trips.append(elapsed * 1e3)
                models.append(response.chunk.inference_latency * 1e3)
        node.destroy_node()
        rclpy.shutdown()
    if len(round_trips) < requests // 2:
        raise RuntimeError(f"only {len(round_trips)} of {requests} chunk requests were answered")
    overhead = [trip - model for trip, model in zip(round_trips, models)]
    return [
        Measurement.from_samples("node overhead (round trip - model)", "ms", overhead, target="median < 10 ms"),
        Measurement.from_samples("request round trip", "ms", round_trips),
        Measurement.from_samples("model inference inside the node", "ms", models, torch_threads=1),
    ]

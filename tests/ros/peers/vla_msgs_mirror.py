"""A separate process that answers every vla_msgs interface, so tests can see each type cross DDS.

Topics come back unchanged on a second topic; services and the action answer with values made
from the request, so the caller can tell that its request arrived whole. Prints READY once all
endpoints exist and runs until killed.
"""
from __future__ import annotations

import sys
import time

import rclpy
from rclpy.action import ActionServer, CancelResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from vla_msgs.action import ExecuteInstruction
from vla_msgs.msg import ActionChunk, PolicyStatus
from vla_msgs.srv import DiscardEpisode, GetActionChunk, StartEpisode, StopEpisode

FEEDBACK_COUNT = 3


class Mirror(Node):
    def __init__(self) -> None:
        super().__init__("vla_msgs_mirror")
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        chunk_out = self.create_publisher(ActionChunk, "chunk_out", qos)
        status_out = self.create_publisher(PolicyStatus, "status_out", qos)
        self.create_subscription(ActionChunk, "chunk_in", chunk_out.publish, qos)
        self.create_subscription(PolicyStatus, "status_in", status_out.publish, qos)
        self.create_service(GetActionChunk, "get_chunk", self.get_chunk)
        self.create_service(StartEpisode, "start_episode", self.start_episode)
        self.create_service(StopEpisode, "stop_episode", self.stop_episode)
        self.create_service(DiscardEpisode, "discard_episode", self.discard_episode)
        ActionServer(
            self,
            ExecuteInstruction,
            "execute_instruction",
            self.execute,
            cancel_callback=lambda _goal: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup(),
        )

    def get_chunk(self, request: GetActionChunk.Request, response: GetActionChunk.Response):
        response.success = True
        response.message = request.instruction
        response.chunk.chunk_id = request.source_chunk_id + 1
        response.chunk.prefix_length = request.prefix_length
        response.chunk.data = list(request.committed_actions)
        response.chunk.dt = request.latency_budget
        return response

    def start_episode(self, request: StartEpisode.Request, response: StartEpisode.Response):
        response.success = True
        response.episode_id = f"episode:{request.instruction}"
        response.bag_path = request.operator_notes
        return response

    def stop_episode(self, request: StopEpisode.Request, response: StopEpisode.Response):
        response.success = request.task_success
        response.message = request.operator_notes
        response.message_count = 7
        response.duration = 1.5
        return response

    def discard_episode(self, request: DiscardEpisode.Request, response: DiscardEpisode.Response):
        response.success = True
        response.episode_id = "discarded"
        return response

    def execute(self, goal_handle):
        for step in range(1, FEEDBACK_COUNT + 1):
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
                return ExecuteInstruction.Result(outcome=ExecuteInstruction.Result.OUTCOME_CANCELED)
            feedback = ExecuteInstruction.Feedback(chunks_executed=step, latency_last=0.01 * step)
            goal_handle.publish_feedback(feedback)
            time.sleep(0.2)
        goal_handle.succeed()
        return ExecuteInstruction.Result(
            outcome=ExecuteInstruction.Result.OUTCOME_SUCCEEDED,
            reason=goal_handle.request.instruction,
            chunks_executed=FEEDBACK_COUNT,
            elapsed=goal_handle.request.time_limit,
        )


def main() -> None:
    rclpy.init()
    node = Mirror()
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    print("READY", flush=True)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())

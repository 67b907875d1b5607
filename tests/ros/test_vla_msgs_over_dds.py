"""Every vla_msgs message, service and action crosses between two processes over Fast DDS."""
from __future__ import annotations

import rclpy
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import KeyValue
from geometry_msgs.msg import Point, Pose, Quaternion
from rclpy.action import ActionClient
from rclpy.qos import QoSProfile, ReliabilityPolicy

from vla_msgs.action import ExecuteInstruction
from vla_msgs.msg import ActionChunk, PolicyStatus
from vla_msgs.srv import DiscardEpisode, GetActionChunk, StartEpisode, StopEpisode

from .conftest import PEERS

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def full_chunk() -> ActionChunk:
    chunk = ActionChunk()
    chunk.header.stamp.sec = 12
    chunk.header.stamp.nanosec = 345
    chunk.header.frame_id = "base_link"
    chunk.chunk_id = 42
    chunk.embodiment = "so101"
    chunk.action_space = "eef_relative"
    chunk.channel_names = ["arm0/x", "arm0/y", "arm0/gripper"]
    chunk.target_names = ["gripper_frame_link"]
    chunk.horizon = 2
    chunk.dims = 3
    chunk.dt = Duration(sec=0, nanosec=33_333_333)
    chunk.data = [0.1, -0.2, 1.0, 0.15, -0.25, 0.0]
    chunk.chunk_start_poses = [Pose(position=Point(x=0.3, y=0.0, z=0.2), orientation=Quaternion(w=1.0))]
    chunk.prefix_length = 1
    chunk.inference_latency = 0.046875  # exact in float32
    return chunk


def full_status() -> PolicyStatus:
    return PolicyStatus(
        state=PolicyStatus.STATE_HOLDING,
        detail="camera 'wrist' is stale",
        model="checkpoints/default",
        embodiment="aloha",
        instruction="pick up the red cube",
        chunks=9,
        latency_last=0.046875,
        latency_median=0.03125,
        latency_p95=0.0625,
        latency_max=0.078125,
        rejected_inputs=3,
        safety_holds=1,
        counters=[KeyValue(key="nan_joint_state", value="3")],
    )


def roundtrip_topic(node, msg_type, out_topic: str, in_topic: str, message):
    received = []
    node.create_subscription(msg_type, in_topic, received.append, RELIABLE)
    publisher = node.create_publisher(msg_type, out_topic, RELIABLE)
    assert node.spin_until(lambda: publisher.get_subscription_count() > 0 and node.count_publishers(in_topic) > 0), (
        f"the mirror process never matched {out_topic} / {in_topic}"
    )
    publisher.publish(message)
    assert node.spin_until(lambda: received, timeout=10.0), f"nothing came back on {in_topic}"
    return received[0]


def call(node, srv_type, name: str, request):
    client = node.create_client(srv_type, name)
    assert node.spin_until(client.service_is_ready), f"service {name} never appeared"
    future = client.call_async(request)
    assert node.spin_until(future.done), f"service {name} did not answer"
    return future.result()


def test_every_interface_crosses_processes(ros_process, ros_node) -> None:
    ros_process(str(PEERS / "vla_msgs_mirror.py"))

    chunk = full_chunk()
    assert roundtrip_topic(ros_node, ActionChunk, "chunk_in", "chunk_out", chunk) == chunk
    status = full_status()
    assert roundtrip_topic(ros_node, PolicyStatus, "status_in", "status_out", status) == status

    reply = call(
        ros_node,
        GetActionChunk,
        "get_chunk",
        GetActionChunk.Request(
            instruction="stack the cups",
            source_chunk_id=41,
            source_start_step=5,
            prefix_length=2,
            committed_actions=[1.0, 2.0, 3.0, 4.0],
            latency_budget=Duration(sec=0, nanosec=80_000_000),
        ),
    )
    assert reply.success and reply.message == "stack the cups"
    assert reply.chunk.chunk_id == 42 and reply.chunk.prefix_length == 2
    assert list(reply.chunk.data) == [1.0, 2.0, 3.0, 4.0]
    assert reply.chunk.dt == Duration(sec=0, nanosec=80_000_000)

    started = call(ros_node, StartEpisode, "start_episode",
                   StartEpisode.Request(instruction="open the drawer", operator_notes="/data/ep7"))
    assert (started.success, started.episode_id, started.bag_path) == (True, "episode:open the drawer", "/data/ep7")
    stopped = call(ros_node, StopEpisode, "stop_episode",
                   StopEpisode.Request(task_success=True, operator_notes="clean grasp"))
    assert (stopped.success, stopped.message, stopped.message_count, stopped.duration) == (True, "clean grasp", 7, 1.5)
    discarded = call(ros_node, DiscardEpisode, "discard_episode", DiscardEpisode.Request())
    assert discarded.success and discarded.episode_id == "discarded"


def test_execute_instruction_action_crosses_processes(ros_process, ros_node) -> None:
    ros_process(str(PEERS / "vla_msgs_mirror.py"))
    client = ActionClient(ros_node, ExecuteInstruction, "execute_instruction")
    assert ros_node.spin_until(client.server_is_ready), "action server never appeared"

    feedback: list[ExecuteInstruction.Feedback] = []
    goal = ExecuteInstruction.Goal(instruction="pick up the red cube", time_limit=Duration(sec=30))
    sent = client.send_goal_async(goal, feedback_callback=lambda msg: feedback.append(msg.feedback))
    assert ros_node.spin_until(sent.done)
    handle = sent.result()
    assert handle.accepted
    result_future = handle.get_result_async()
    assert ros_node.spin_until(result_future.done, timeout=15.0)
    result = result_future.result().result
    assert result.outcome == ExecuteInstruction.Result.OUTCOME_SUCCEEDED
    assert result.reason == "pick up the red cube" and result.elapsed == Duration(sec=30)
    assert [f.chunks_executed for f in feedback] == [1, 2, 3]
    assert rclpy.ok(context=ros_node.context)

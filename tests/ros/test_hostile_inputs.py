"""Hostile inputs over DDS against `vla up` (policy node and chunk executor in their own processes).

One pair of nodes serves the whole module, as on a robot that meets one bad message after
another: for every case the cause is named in `~/status` (counted under its name), both nodes stay
up, the policy serves chunks again once sane input returns, and nothing non-finite or outside
the joint limits reaches the command topic. The test feeds the SO-101's joint states and both
cameras (JPEG CompressedImages, the transport where a decompression bomb can arrive) itself,
sane unless a case corrupts them.
"""
from __future__ import annotations

import io
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import rclpy
from PIL import Image as PILImage
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, JointState
from trajectory_msgs.msg import JointTrajectory

from vla_core.runtime.decoding import ChunkDecoder
from vla_msgs.msg import PolicyStatus
from vla_msgs.srv import GetActionChunk

from .conftest import RosProcess, spin_until
from .test_runtime_nodes import CHUNK_SIZE, SO101, START, Recorder, counters, fast_so101  # noqa: F401 - a fixture

pytestmark = [pytest.mark.slow, pytest.mark.ros]
FAR_FUTURE = 2**31 - 1  # the largest sec a builtin_interfaces/Time holds
SERVING = (PolicyStatus.STATE_READY, PolicyStatus.STATE_RUNNING)
TRANSIENT_REFUSALS = ("one request at a time", "no complete observation", "newest observation is")


def _jpeg(shade: int) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(np.full((224, 224, 3), shade, np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def png_header_claiming(width: int, height: int) -> bytes:
    """A PNG of a few dozen bytes whose header claims width x height pixels (and holds none)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


Mutation = Callable[[JointState, dict[str, CompressedImage]], None]


class SensorFeed:
    """The robot's sensors at 30 Hz from the test: sane, except for the mutations a case installs
    (`once` for a single message, `during` until it is removed)."""

    def __init__(self, node) -> None:
        self.node = node
        self.joints = node.create_publisher(JointState, SO101.joint_state_topic, qos_profile_sensor_data)
        self.cameras = {c.name: node.create_publisher(CompressedImage, c.topic + "/compressed", qos_profile_sensor_data)
                        for c in SO101.cameras}
        self.jpeg = {name: _jpeg(60 + 40 * i) for i, name in enumerate(self.cameras)}
        self._lock = threading.Lock()
        self._once: list[Mutation] = []
        self._during: list[Mutation] = []
        node.create_timer(1 / 30, self.publish)

    def once(self, mutation: Mutation) -> None:
        with self._lock:
            self._once.append(mutation)

    def during(self, mutation: Mutation | None) -> None:
        with self._lock:
            self._during = [mutation] if mutation else []

    def publish(self) -> None:
        stamp = self.node.get_clock().now().to_msg()
        joints = JointState(name=list(SO101.joint_names), position=list(START))
        joints.header.stamp = stamp
        images = {}
        for name, data in self.jpeg.items():
            images[name] = CompressedImage(format="jpeg", data=data)
            images[name].header.stamp = stamp
        with self._lock:
            mutations, self._once = [*self._once, *self._during], []
        for mutate in mutations:
            mutate(joints, images)
        self.joints.publish(joints)
        for name, publisher in self.cameras.items():
            publisher.publish(images[name])


@dataclass
class Graph:
    node: object
    executor: SingleThreadedExecutor
    feed: SensorFeed
    policy_status: Recorder
    executor_status: Recorder
    commands: Recorder
    client: object
    nodes: RosProcess
    diagnostics: Recorder

    def said(self, who: str, cause: str) -> str:
        """The latest message under `cause` in `who`'s /diagnostics ('' when none yet)."""
        for array in reversed(self.diagnostics.messages):
            for status in array.status:
                if status.name.endswith(who):
                    return next((kv.value for kv in status.values if kv.key == f"{cause} (last)"), "")
        return ""

    def spin_until(self, done: Callable[[], bool], timeout: float) -> bool:
        return spin_until(self.executor, done, timeout)

    def status(self, recorder: Recorder, predicate, timeout: float, what: str) -> PolicyStatus:
        found = self.spin_until(lambda: recorder.messages and predicate(recorder.messages[-1]), timeout)
        last = recorder.messages[-1] if recorder.messages else None
        assert found, f"{what} within {timeout} s; last status: {last}\n" + "\n".join(self.nodes.lines[-30:])
        return last

    def request(self, request: GetActionChunk.Request, timeout: float = 15.0) -> GetActionChunk.Response:
        """The policy's answer to `request`, asked again while it is busy with the executor's or
        has no complete observation (this process publishes the sensors only while it spins: on a
        loaded machine they can pause for longer than the staleness limit)."""
        deadline = time.monotonic() + 4 * timeout
        while True:
            future = self.client.call_async(request)
            assert self.spin_until(future.done, timeout), (
                f"no answer to a chunk request within {timeout} s: the service is dead\n"
                + "\n".join(self.nodes.lines[-30:]))
            response = future.result()
            transient = any(words in response.message for words in TRANSIENT_REFUSALS)
            if response.success or not transient or time.monotonic() > deadline:
                return response
            self.spin_until(lambda: False, 0.1)

    def serves_again(self) -> None:
        """The policy reports itself serving and answers a plain request with a whole chunk (from
        the JPEG CompressedImages this module feeds it: image_transport:=compressed)."""
        self.status(self.policy_status, lambda s: s.state in SERVING, 15.0, "the policy serving again")
        response = self.request(GetActionChunk.Request(instruction="pick up the cube"))
        assert response.success, response.message
        assert response.chunk.horizon == CHUNK_SIZE, response.chunk.horizon


@pytest.fixture(scope="module")
def graph(fast_so101) -> Iterator[Graph]:  # noqa: F811 - the imported fixture
    profile, checkpoint = fast_so101
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("hostile_inputs", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    nodes = RosProcess([sys.executable, "-m", "vla_core.cli", "up", "--embodiment", str(profile), "--checkpoint",
                        str(checkpoint), "--policy-param", "instruction:=pick up the cube",
                        "--policy-param", "torch_threads:=1", "--policy-param", "image_transport:=compressed",
                        "--policy-param", "status_rate_hz:=10.0", "--executor-param", "status_rate_hz:=10.0"],
                       ready_line=None)
    graph = Graph(node, executor, SensorFeed(node), Recorder(node, PolicyStatus, "vla_policy/status"),
                  Recorder(node, PolicyStatus, "vla_executor/status"),
                  Recorder(node, JointTrajectory, SO101.command_topic),
                  node.create_client(GetActionChunk, "vla_policy/get_action_chunk"), nodes,
                  Recorder(node, DiagnosticArray, "/diagnostics"))
    try:
        graph.status(graph.policy_status, lambda s: s.state in SERVING, 90.0, "the policy ready")
        yield graph
    finally:
        nodes.stop()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)


def assert_alive_and_safe(graph: Graph) -> None:
    assert graph.nodes.alive, "\n".join(graph.nodes.lines[-40:])
    output = "\n".join(graph.nodes.lines)
    assert "Traceback" not in output, output[-4000:]
    lower, upper = ChunkDecoder(SO101).kinematics.position_limits()
    for msg in graph.commands.messages:
        for point in msg.points:
            positions = np.array(point.positions)
            assert np.all(np.isfinite(positions)), f"non-finite command {positions}"
            assert np.all(positions >= lower - 1e-9) and np.all(positions <= upper + 1e-9), positions


def _wrist(mutate: Callable[[CompressedImage], None]) -> Mutation:
    return lambda joints, images: mutate(images["wrist"])


def _set_data(data: bytes) -> Callable[[CompressedImage], None]:
    def mutate(image: CompressedImage) -> None:
        image.format = "png"
        image.data = data
    return mutate


def _future(msg) -> None:
    msg.header.stamp.sec, msg.header.stamp.nanosec = FAR_FUTURE, 0


def _duplicate_joint(joints: JointState, images) -> None:
    joints.name = [*joints.name, joints.name[0]]
    joints.position = [*joints.position, 1.0]


# (case, how the sensors are corrupted, kept for how long, the cause counted, words of its message)
SENSOR_CASES = [
    ("decompression_bomb", _wrist(_set_data(png_header_claiming(30_000, 30_000))), "during", "bad_image",
     "refused before decoding"),
    ("over_pixel_budget", _wrist(_set_data(png_header_claiming(5_000, 5_000))), "during", "bad_image",
     "over the budget of"),
    ("garbage_png", _wrist(_set_data(b"\x89PNG\r\n\x1a\n" + bytes(40))), "during", "bad_image", "does not decode"),
    ("future_camera_stamp", _wrist(_future), "once", "future_stamp", "ahead of the node's clock"),
    ("future_joint_stamp", lambda joints, images: _future(joints), "once", "future_stamp", "ahead of the node's clock"),
    ("duplicate_joint_names", _duplicate_joint, "during", "duplicate_joint_names", "more than once"),
]


@pytest.mark.parametrize("case, mutation, how, cause, words", SENSOR_CASES, ids=[c[0] for c in SENSOR_CASES])
def test_a_hostile_sensor_message_is_refused_by_name_and_the_policy_recovers(graph: Graph, case: str,
                                                                             mutation: Mutation, how: str,
                                                                             cause: str, words: str) -> None:
    before = counters(graph.policy_status.messages[-1]).get(cause, 0)
    if how == "once":
        graph.feed.once(mutation)
    else:
        graph.feed.during(mutation)
    try:  # the corruption stays until this case's own message is seen, not an earlier case's late one
        graph.status(graph.policy_status, lambda s: counters(s).get(cause, 0) > before, 10.0, f"a {cause} count")
        assert graph.spin_until(lambda: words in graph.said("vla_policy: policy", cause), 10.0), \
            f"{words!r} is not said about {cause}: {graph.said('vla_policy: policy', cause)!r}"
    finally:
        graph.feed.during(None)
    if cause == "duplicate_joint_names":  # the executor reads joint states too, and refuses them the same way
        graph.status(graph.executor_status, lambda s: counters(s).get(cause, 0) > 0, 10.0, f"executor {cause}")
    graph.serves_again()
    assert_alive_and_safe(graph)


def _prefix_request(source: int, committed: list[float], rows: int) -> GetActionChunk.Request:
    return GetActionChunk.Request(instruction="pick up the cube", source_chunk_id=source, source_start_step=2,
                                  prefix_length=rows, committed_actions=committed)


@pytest.mark.parametrize("case, values, words", [
    ("all_zero", lambda dims: [0.0] * 2 * dims, "are not valid eef_relative actions"),
    ("nan", lambda dims: [float("nan")] + [0.0] * (2 * dims - 1), "1 NaN or inf value(s) (prefix rows [0])"),
    ("short", lambda dims: [0.0] * 3, f"prefix_length x {SO101.action_dim} = {2 * SO101.action_dim} values, got 3"),
])
def test_a_bad_committed_prefix_is_refused_with_what_was_wrong_and_the_service_answers_again(
        graph: Graph, case: str, values: Callable[[int], list[float]], words: str) -> None:
    first = graph.request(GetActionChunk.Request(instruction="pick up the cube"))
    assert first.success, first.message
    refused = graph.request(_prefix_request(first.chunk.chunk_id, values(SO101.action_dim), 2))
    assert not refused.success and words in refused.message, refused.message
    graph.status(graph.policy_status, lambda s: counters(s).get("bad_prefix", 0) > 0, 10.0, "a bad_prefix count")
    graph.serves_again()
    assert_alive_and_safe(graph)


def test_hostile_goals_and_cancels_leave_the_policy_serving(graph: Graph) -> None:
    """An empty instruction, a burst of goals each replacing the last, a cancel of the survivor
    and a cancel of a goal that has already ended: each answered by name, the node serving after."""
    from rclpy.action import ActionClient

    from vla_msgs.action import ExecuteInstruction

    client = ActionClient(graph.node, ExecuteInstruction, "vla_policy/execute_instruction")
    assert graph.spin_until(client.server_is_ready, 10.0)

    def send(instruction: str):
        sent = client.send_goal_async(ExecuteInstruction.Goal(instruction=instruction))
        assert graph.spin_until(sent.done, 10.0), "no answer to a goal"
        return sent.result()

    assert not send("   ").accepted, "an instruction of spaces is rejected"
    handles, results = [], []
    for k in range(5):  # each goal's result asked for as soon as it is accepted, as a client does
        handles.append(send(f"pick up cube {k}"))
        assert handles[-1].accepted
        results.append(handles[-1].get_result_async())
    results.pop()  # the survivor's, taken again after its cancel below
    assert graph.spin_until(lambda: all(r.done() for r in results), 20.0), "replaced goals never ended"
    assert all(r.result().result.reason == "replaced by a newer goal" for r in results)
    last = handles[-1]
    assert graph.spin_until(last.cancel_goal_async().done, 10.0)
    result = last.get_result_async()
    assert graph.spin_until(result.done, 10.0)
    assert result.result().result.outcome == ExecuteInstruction.Result.OUTCOME_CANCELED
    late = handles[0].cancel_goal_async()  # its goal ended long ago
    assert graph.spin_until(late.done, 10.0)
    graph.serves_again()
    assert_alive_and_safe(graph)

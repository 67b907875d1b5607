"""`vla eval` evaluates what the executor node runs: the same observations and chunks, the same
commands.

A closed-loop episode in the simulation (the scripted oracle through `ClosedLoop`) is recorded:
the joints measured every tick and every chunk the policy answered. The same sequence is then
fed to a real `ExecutorNode` in this process, tick by tick on the same clock: each joint state
through its subscription callback, each answer through its service client's future at the tick
the evaluation handed the chunk over, each control tick through its timer callback. The node
must ask for chunks at the same ticks with the same committed prefix, and command the same row
at every tick (the target, or the hold position where the evaluation held); a change to the
control step in one of the two and not the other fails here.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import rclpy
from rclpy.parameter import Parameter
from rclpy.task import Future
from sensor_msgs.msg import JointState

from vla_core.embodiment import load_embodiment
from vla_core.evaluation import EVAL_SEED_BASE
from vla_core.evaluation.closed_loop import ClosedLoop, ExecutionSettings
from vla_core.evaluation.environments import sim_task
from vla_core.evaluation.policies import ScriptedOracle
from vla_core.geometry import transform_to_pose7
from vla_core.runtime.decoding import ChunkDecoder
from vla_core.runtime.policy_inputs import committed_prefix
from vla_core.runtime.scheduling import ExecutionMode
from vla_msgs.srv import GetActionChunk
from vla_policy_node.chunk_messages import chunk_to_message
from vla_policy_node.executor_node import ExecutorNode

pytestmark = pytest.mark.ros

LATENCY = 0.1  # s: a chunk is handed over 3 ticks after its observation at 30 Hz
SECONDS = 2.5  # simulated; several chunk boundaries in every mode


class RecordingOracle(ScriptedOracle):
    """The scripted oracle, keeping each chunk's observed joints, actions and conditioning prefix.
    With `spoil`, rows 4-7 of every third chunk are moved 1 m out of reach, so targets are
    refused and the robot holds mid-chunk."""

    def __init__(self, spec, spoil: bool) -> None:
        super().__init__(spec)
        self.spoil = spoil
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []

    def predict_chunk(self, observation, instruction, embodiment, prefix=None, seed=None):
        chunk = super().predict_chunk(observation, instruction, embodiment, prefix, seed)
        if self.spoil and len(self.chunks) % 3 == 2:
            chunk.actions[4:8, 0] += 1.0
        self.chunks.append((observation.state.copy(), chunk.actions.copy(), None if prefix is None else prefix.copy()))
        return chunk


class FakeClient:
    """The executor's GetActionChunk client: always available; keeps each request and its future."""

    def __init__(self) -> None:
        self.calls: list[tuple[GetActionChunk.Request, Future]] = []

    def service_is_ready(self) -> bool:
        return True

    def call_async(self, request: GetActionChunk.Request) -> Future:
        future = Future()  # no executor: the done callback runs when the test sets the result
        self.calls.append((request, future))
        return future


class RecordingCommand:
    def __init__(self) -> None:
        self.sent: dict[int, np.ndarray] = {}
        self.tick = -1

    def send(self, target: np.ndarray, lookahead: np.ndarray, dt: float, new_chunk: bool) -> None:
        self.sent[self.tick] = target.copy()


def answer(spec, decoder: ChunkDecoder, chunk_id: int, joints: np.ndarray, actions: np.ndarray):
    """What the policy node answers: the chunk with its start pose, as ActionChunk carries it."""
    start = decoder.start_from_joints(joints)
    response = GetActionChunk.Response(success=True)
    response.chunk = chunk_to_message(
        chunk_id, actions, stamp=0.0, frame_id=spec.base_frame, embodiment=spec.name,
        action_space=spec.action_space, channel_names=spec.channel_names, target_names=decoder.target_names(),
        dt=1.0 / spec.control_rate_hz, start_poses=np.array([transform_to_pose7(p) for p in start.poses]),
        start_positions=np.zeros(0), prefix_length=0, inference_latency=LATENCY)
    return response


@pytest.mark.parametrize("mode, spoil", [("sync", False), ("async", False), ("ensemble", False), ("async", True)])
def test_the_executor_node_commands_what_the_evaluation_commanded(mode, spoil) -> None:
    spec = load_embodiment("so101")
    oracle = RecordingOracle(spec, spoil)
    loop = ClosedLoop(sim_task("so101", "pick_cube"), spec, oracle, ExecutionSettings(mode=ExecutionMode(mode)),
                      latency=LATENCY)
    try:
        trace = loop.run(EVAL_SEED_BASE, time_limit=SECONDS).trace
    finally:
        loop.close()
    requested = sorted(trace.request_ticks.values())
    delay = max(1, math.ceil(LATENCY * spec.control_rate_hz - 1e-9))
    answer_at = {tick + delay: chunk_id for chunk_id, tick in trace.request_ticks.items()}
    decoder = ChunkDecoder(spec)

    context = rclpy.Context()
    rclpy.init(context=context)
    node = ExecutorNode(context=context, parameter_overrides=[Parameter("mode", value=mode)])
    try:
        client, command, clock = FakeClient(), RecordingCommand(), [0.0]
        node._client, node.command, node.now = client, command, lambda: clock[0]
        for tick, measured in enumerate(trace.measured):
            clock[0], command.tick = tick * node.dt, tick
            if tick in answer_at:
                chunk_id = answer_at[tick]
                joints, actions, _ = oracle.chunks[chunk_id - 1]
                client.calls[chunk_id - 1][1].set_result(answer(spec, decoder, chunk_id, joints, actions))
            node._on_joint_state(JointState(name=list(spec.joint_names), position=measured.tolist()))
            calls = len(client.calls)
            node._on_control_tick()
            if len(client.calls) > calls:
                assert requested[calls] == tick, f"the node asked for chunk {calls + 1} at tick {tick}"
        assert len(client.calls) == len(requested)
        # every answer taken; only the spoilt rows are reported, as out of reach of IK
        assert set(node._causes.counts) <= ({"ik_unreachable"} if spoil else set()), dict(node._causes.counts)

        for chunk_id, (request, _) in enumerate(client.calls, start=1):
            _, _, prefix = oracle.chunks[chunk_id - 1]
            if prefix is None:
                assert request.prefix_length == 0, f"chunk {chunk_id}: the node sent a prefix the evaluation did not"
                continue
            source_joints, source_actions, _ = oracle.chunks[request.source_chunk_id - 1]
            committed = np.array(request.committed_actions).reshape(request.prefix_length, -1)
            reexpressed = committed_prefix(decoder, source_actions, decoder.start_from_joints(source_joints),
                                           request.source_start_step, committed,
                                           decoder.start_from_joints(oracle.chunks[chunk_id - 1][0]))
            np.testing.assert_allclose(reexpressed, prefix, atol=1e-9, err_msg=f"chunk {chunk_id}'s prefix")

        last = None
        holds = 0
        for tick, row in enumerate(trace.commands):
            if np.all(np.isfinite(row)):
                last = row
            elif last is not None:
                holds += 1
            if last is None:
                assert tick not in command.sent, f"tick {tick}: the node commanded before the evaluation did"
                continue
            assert tick in command.sent, f"tick {tick}: the evaluation commanded, the node sent nothing"
            np.testing.assert_allclose(command.sent[tick], last, atol=1e-6, err_msg=f"tick {tick} ({mode})")
        refusals = node.step.safety.counts["non_finite_target"]
        assert len(command.sent) > 40
        if spoil:
            assert holds > 0 and refusals > 0, "the spoilt chunks must make both hold"
    finally:
        node.destroy_node()
        context.try_shutdown()

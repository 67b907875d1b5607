"""The chunk executor: owns the control clock and turns action chunks into safe robot commands.

A timer at the control rate (on the node's own single-threaded executor, where every other
callback is short, so nothing delays it) runs one `ControlStep` (`vla_core.runtime.control_step`,
the tick `vla eval` runs too): which target to command at this tick and when to request the
next chunk (synchronous, asynchronous with a committed prefix as in Xiaomi-Robotics-0, or ACT's
temporal ensembling). Requests go to the policy node's GetActionChunk service without blocking
the tick (the policy may run on another computer: each answer's round trip minus the inference
time the policy reports is the network's share of the latency, in /diagnostics and the log);
answers are validated, decoded with their chunk-start poses and solved by IK (from the joints
measured when the request went out) on a side node's executor thread (see side_executor.py),
then handed to the step. Every target passes the safety filter before the command interface
sends it; anything refused means holding the last safe position.

The executor starts commanding with the first chunk target that passes the safety filter;
from then on it commands every tick: the target, or the hold position while it waits, holds
or is stopped, until the policy refuses a request as idle (no instruction to execute: the goal
ended). Then it drops the rest of the chunk and stops commanding, and the robot's controller
holds where the last command left it; the next goal starts from the measured joints, so a
teleoperator, a simulation reset or another controller may move the robot in between.

Interfaces (relative to the node's namespace): `~/stop` (std_msgs/Empty topic and
std_srvs/Trigger service) halts motion at once; `~/resume` (Trigger) lets the executor
move again with a fresh chunk; `~/status` (vla_msgs/PolicyStatus) and `/diagnostics`.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from functools import partial

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Empty
from std_srvs.srv import Trigger

from vla_core.embodiment import load_embodiment
from vla_core.geometry import pose7_to_transform
from vla_core.runtime.decoding import ChunkDecoder
from vla_core.runtime.control_step import ControlStep, ExecutionSettings, StepRequest, StepState
from vla_core.runtime.latency import LatencyWindow
from vla_core.runtime.scheduling import ExecutionMode

from vla_msgs.msg import PolicyStatus
from vla_msgs.srv import GetActionChunk

from .chunk_messages import ChunkMessageError, ReceivedChunk, chunk_from_message
from .command_interfaces import (
    COMMAND_INTERFACES,
    CommandInterface,
    JointTrajectoryCommand,
    MoveItPyCommand,
    ServoPoseCommand,
)
from .node_main import run_node
from .parameters import (
    Param,
    declare_and_read,
    empty_or_length,
    in_range,
    one_of,
    positive,
)
from .sensor_inputs import JointStateReader
from .side_executor import SideExecutor
from .status import CauseLog, StatusReport, diagnostics_message, status_message

DEFAULTS = ExecutionSettings()
PARAMETERS = (
    Param("embodiment", "so101", "Embodiment profile: a name from config/embodiments or a YAML path."),
    Param("mode", DEFAULTS.mode.value, "Chunk execution: sync, async (committed prefix) or ensemble (ACT).",
          one_of(*(m.value for m in ExecutionMode))),
    Param("control_rate_hz", 0.0, "Control clock in Hz (10-200); 0 = the profile's control rate.",
          lambda v: None if v == 0 or 10 <= v <= 200 else "expected 0 or a rate in [10, 200]"),
    Param("execute_steps", DEFAULTS.execute_steps, "Rows executed before the next request (sync and async; "
                                                  "async asks earlier when the latency would outlast the rest).",
          positive),
    Param("ensemble_interval", DEFAULTS.ensemble_interval, "Ticks between requests in ensemble mode.",
          positive),
    Param("ensemble_decay", DEFAULTS.ensemble_decay, "ACT's m in exp(-m i) for ensemble weights.",
          in_range(0.0, 10.0)),
    Param("policy_service", "vla_policy/get_action_chunk", "GetActionChunk service of the policy node "
                                                          "(relative: resolved in this node's namespace)."),
    Param("request_timeout", 2.0, "Seconds before an unanswered chunk request is given up.", positive),
    Param("retry_interval", 0.5, "Seconds to wait after a refused or failed request.", positive),
    Param("command_interface", "joint_trajectory", "How targets reach the robot: " + ", ".join(COMMAND_INTERFACES),
          one_of(*COMMAND_INTERFACES)),
    Param("command_topic", "", "JointTrajectory topic of the joint trajectory controller; empty = the profile's."),
    Param("gripper_topic", "", "Float64MultiArray topic for gripper joints; empty = grippers in the trajectory."),
    Param("servo_pose_topics", [], "PoseStamped topic per arm for MoveIt Servo; empty = "
                                   "servo_node/pose_target_cmds for a single arm."),
    Param("planning_group", "arm", "MoveIt planning group (command_interface 'moveit')."),
    Param("joint_state_topic", "", "JointState topic; empty = the profile's."),
    Param("limit_policy", DEFAULTS.limit_policy, "Targets beyond joint position or velocity limits: clamp or reject.",
          one_of("clamp", "reject")),
    Param("max_joint_velocity", DEFAULTS.max_joint_velocity,
          "Cap on the robot model's velocity limits (rad/s or m/s).", positive),
    Param("max_jump", DEFAULTS.max_jump, "Largest step between consecutive targets in any arm joint before rejection "
                                         "(grippers are exempt: they switch in one step, limited by their velocity).",
          positive),
    Param("workspace", list(DEFAULTS.workspace), "End-effector box in the base frame: "
                                                 "min x, y, z, max x, y, z (metres).", empty_or_length(6)),
    Param("joint_state_timeout", DEFAULTS.joint_state_timeout, "Seconds without joint states before holding.",
          positive),
    Param("chunk_timeout", DEFAULTS.chunk_timeout, "Seconds without a chunk while executing before holding.",
          positive),
    Param("status_rate_hz", 2.0, "Rate of PolicyStatus and /diagnostics.", in_range(0.1, 50.0)),
    Param("realtime_priority", 0, "SCHED_FIFO priority (1-99) of the control thread, as ros2_control gives its "
                                  "loop; 0 = normal scheduling. Needs CAP_SYS_NICE or an rtprio limit.",
          in_range(0, 99)),
)


class ExecutorNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("vla_executor", **kwargs)
        self._answers: SideExecutor | None = None  # before anything can fail: rclpy destroys half-built nodes too
        self.params = p = declare_and_read(self, PARAMETERS)
        self.spec = load_embodiment(p["embodiment"])
        self.decoder = ChunkDecoder(self.spec)
        self.step = ControlStep(self.spec, self.decoder, ExecutionSettings.from_parameters(p))
        self.dt = self.step.dt
        self.joint_reader = JointStateReader(self.spec.joint_names, p["joint_state_topic"] or self.spec.joint_state_topic)
        self._causes = CauseLog(self.get_logger())
        self._latency = LatencyWindow()
        self._round_trip = LatencyWindow()  # request sent -> answer received, monotonic wall time
        self._network = LatencyWindow()  # round trip minus the policy's reported inference time
        self._answered = 0  # chunk requests answered with a chunk
        self._lock = threading.Lock()  # guards the step, which the answer thread feeds
        self._chunks: dict[int, ReceivedChunk] = {}
        self._chunks_received = 0
        self._retry_at = 0.0
        self._request_sent_at: float | None = None

        guard = self._causes.guard  # an exception escaping a callback would end its thread or the node
        self.create_subscription(JointState, self.joint_reader.topic, guard("joint_state_callback_failed",
                                                                            self._on_joint_state),
                                 qos_profile_sensor_data)
        self._answers = SideExecutor(self, "answers")
        # resolved by this node, so its namespace and remappings apply to the client on the side node too
        self._client = self._answers.node.create_client(GetActionChunk,
                                                        self.resolve_service_name(p["policy_service"]))
        self.create_subscription(Empty, "~/stop", lambda _: self.stop("stop topic"), 10)
        self.create_service(Trigger, "~/stop", self._on_stop_service)
        self.create_service(Trigger, "~/resume", self._on_resume_service)
        self.command: CommandInterface = self._command_interface()
        self._status_pub = self.create_publisher(PolicyStatus, "~/status", 10)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0 / p["status_rate_hz"], guard("status_failed", self._publish_status))
        self.create_timer(self.dt, guard("control_tick_failed", self._on_control_tick))
        self.get_logger().info(f"{p['mode']} execution of {self.spec.name} at {1.0 / self.dt:g} Hz through "
                               f"{p['command_interface']}, chunks from {p['policy_service']}")

    # ---- set-up ----------------------------------------------------------------------------
    def _command_interface(self) -> CommandInterface:
        p = self.params
        if p["command_interface"] == "joint_trajectory":
            return JointTrajectoryCommand(self, self.spec, p["command_topic"] or self.spec.command_topic,
                                          p["gripper_topic"])
        if p["command_interface"] == "servo":
            topics = p["servo_pose_topics"] or (["servo_node/pose_target_cmds"] if len(self.spec.arms) == 1 else [])
            return ServoPoseCommand(self, self.spec, self.decoder.kinematics, topics, p["gripper_topic"])
        return MoveItPyCommand(self, self.spec, p["planning_group"], self._measured_joints, p["gripper_topic"])

    def _measured_joints(self) -> np.ndarray | None:
        with self._lock:
            measured = self.step.measured
            return None if measured is None else measured.copy()

    def now(self) -> float:
        return self.get_clock().now().nanoseconds / 1e9

    # ---- inputs ----------------------------------------------------------------------------
    def _on_joint_state(self, msg: JointState) -> None:
        joints = self._causes.attempt(lambda: self.joint_reader.read(msg.name, msg.position))
        if joints is None:
            return
        with self._lock:
            self.step.observe_joints(joints, self.now())

    def stop(self, source: str) -> None:
        with self._lock:
            self.step.stop()
        self.get_logger().warning(f"stopped by {source}: holding; resume needs a fresh chunk")

    def _on_stop_service(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.stop("stop service")
        response.success, response.message = True, "stopped: holding the last safe position"
        return response

    def _on_resume_service(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            was_stopped = self.step.resume()
        response.success = True
        response.message = "resumed: moving again with the next fresh chunk" if was_stopped else "was not stopped"
        self.get_logger().info(response.message)
        return response

    # ---- chunk requests --------------------------------------------------------------------
    def _send_request(self, request: StepRequest, now: float) -> None:
        """Called with the lock held, from the control tick; the answer arrives on another thread."""
        if now < self._retry_at or not self._client.service_is_ready():
            self.step.cancel(request)
            if now >= self._retry_at:
                self._causes.report("policy_unavailable", f"policy service {self.params['policy_service']} is not "
                                                          "available; holding until it is")
                self._retry_at = now + self.params["retry_interval"]
            return
        msg = GetActionChunk.Request()
        chunk = request.chunk
        if chunk.has_prefix:
            rows = chunk.committed_actions(self._chunks[chunk.source_chunk_id].actions)
            msg.source_chunk_id, msg.source_start_step = chunk.source_chunk_id, chunk.source_start_step
            msg.prefix_length, msg.committed_actions = len(rows), rows.reshape(-1).tolist()
        self._request_sent_at = now
        # wall time, not ROS time: under use_sim_time the ROS clock says nothing about the network
        self._client.call_async(msg).add_done_callback(
            self._causes.guard("answer_failed", partial(self._on_response, request, time.monotonic())))

    def _refuse(self, request: StepRequest, cause: str, message: str) -> None:
        self._causes.report(cause, message)
        with self._lock:
            if self.step.cancel(request):
                self._retry_at = self.now() + self.params["retry_interval"]

    def _go_idle(self, request: StepRequest) -> None:
        """The policy has nothing to execute: the step stops commanding (see `ControlStep.go_idle`)."""
        with self._lock:
            was_commanding = self.step.commanding
            if not self.step.go_idle(request):
                return  # an answer to an older request: a newer one may already serve a new goal
            if was_commanding:
                self.get_logger().info("the policy has no instruction: idle, not commanding until the next goal")
            self._retry_at = self.now() + self.params["retry_interval"]

    def _on_response(self, request: StepRequest, sent_at: float, future) -> None:
        response = future.result()
        if response is not None and response.idle:
            self._go_idle(request)
            return
        if response is None or not response.success:
            reason = response.message if response is not None else "no answer"
            self._refuse(request, "policy_refused", f"policy refused chunk request {request.chunk.request_id}: "
                                                    f"{reason}")
            return
        self._record_round_trip(time.monotonic() - sent_at, response.chunk.inference_latency)
        try:
            chunk = chunk_from_message(response.chunk)
            self._check_chunk(chunk)
            start = self.decoder.start_from_message_fields(pose7_to_transform(chunk.start_poses),
                                                           chunk.start_positions)
            targets = self.step.chunk_targets(request, chunk.actions, start)
        except (ChunkMessageError, ValueError) as error:
            self._refuse(request, "bad_chunk", f"chunk refused: {error}")
            return
        if targets.unreachable_rows:
            self._causes.report("ik_unreachable", f"chunk {chunk.chunk_id}: rows {list(targets.unreachable_rows)} are "
                                                  "out of reach of IK; the robot holds at those steps")
        with self._lock:
            if not self.step.on_chunk(request, chunk.chunk_id, targets.positions, self.now()):
                return  # stopped or timed out meanwhile: the answer is stale
            self._chunks[chunk.chunk_id] = chunk
            for old in [cid for cid in self._chunks if cid < chunk.chunk_id - 8]:
                del self._chunks[old]
            self._chunks_received += 1
            self._latency.add(chunk.inference_latency)

    def _record_round_trip(self, round_trip: float, inference: float) -> None:
        """Split a request's round trip into the policy's inference and the rest (transport, queueing):
        the part a faster network or compressed images can shrink, and the part only a faster GPU can."""
        network = max(0.0, round_trip - inference)  # >= 0 up to the float32 rounding of `inference`
        with self._lock:
            self._round_trip.add(round_trip)
            self._network.add(network)
            self._answered += 1
            answers = self._answered
        if answers == 1 or answers % NETWORK_LOG_EVERY == 0:
            self.get_logger().info(f"chunk request round trip {round_trip * 1e3:.1f} ms: inference "
                                   f"{inference * 1e3:.1f} ms, network and queueing {network * 1e3:.1f} ms")

    def _check_chunk(self, chunk: ReceivedChunk) -> None:
        spec = self.spec
        if chunk.embodiment != spec.name or chunk.action_space != spec.action_space:
            raise ValueError(f"chunk {chunk.chunk_id} is for {chunk.embodiment!r} in {chunk.action_space!r}; this "
                             f"executor drives {spec.name!r} in {spec.action_space!r}")
        if chunk.actions.shape[1] != spec.action_dim:
            raise ValueError(f"chunk {chunk.chunk_id} has {chunk.actions.shape[1]} channels, {spec.name} has "
                             f"{spec.action_dim} ({', '.join(spec.channel_names)})")
        if abs(chunk.dt - self.dt) > 1e-4:
            raise ValueError(f"chunk {chunk.chunk_id} has rows every {chunk.dt:.4f} s but the control period is "
                             f"{self.dt:.4f} s: set control_rate_hz to the rate the policy was trained at")

    # ---- the control tick ------------------------------------------------------------------
    def _on_control_tick(self) -> None:
        now = self.now()
        with self._lock:
            if self._request_sent_at is not None and self.step.pending is not None \
                    and now - self._request_sent_at > self.params["request_timeout"]:
                self._causes.report("request_timeout", f"no answer to a chunk request within "
                                                       f"{self.params['request_timeout']} s")
                self.step.scheduler.cancel_pending()
            outcome = self.step.tick(now)
            if outcome.request is not None:
                self._send_request(outcome.request, now)
        for warning in outcome.warnings:
            self.get_logger().warning(warning)
        if outcome.command is not None:
            self.command.send(outcome.command, outcome.lookahead, self.dt, outcome.new_chunk)

    # ---- status ----------------------------------------------------------------------------
    def _publish_status(self) -> None:
        with self._lock:
            counters, holds = self.step.counters(), self.step.holds
            state, detail = STATES[self.step.state], self.step.detail
            chunks, latency = self._chunks_received, self._latency.summary()
            round_trip, network = self._round_trip.summary(), self._network.summary()
        counters.update(self._causes.counts)
        report = StatusReport(state, detail, self.params["policy_service"], self.spec.name, chunks=chunks,
                              latency=latency, rejected_inputs=self._causes.total, safety_holds=holds,
                              counters=counters, round_trip=round_trip, network=network,
                              last_messages=dict(self._causes.last))
        stamp = self.get_clock().now().to_msg()
        self._status_pub.publish(status_message(report, stamp, self.spec.base_frame))
        self._diagnostics_pub.publish(diagnostics_message(report, f"{self.get_fully_qualified_name()}: executor",
                                                          self.spec.name, stamp))


    @property
    def answer_thread_id(self) -> int:
        return self._answers.thread_id

    def destroy_node(self) -> None:
        if self._answers is not None:
            self._answers.destroy()
            self._answers = None
        super().destroy_node()


def _raise_priority(node: ExecutorNode) -> None:
    """Run the control thread under SCHED_FIFO when asked, so inference on the same cores cannot
    delay a tick. The answer thread (decoding, IK) gets the priority below it: it shares the GIL
    with the control thread, and a GIL holder preempted by inference would stall the tick just
    the same. A refusal is logged and the node runs on with normal scheduling."""
    priority = node.params["realtime_priority"]
    if priority <= 0:
        return
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        os.sched_setscheduler(node.answer_thread_id, os.SCHED_FIFO, os.sched_param(max(1, priority - 1)))
        node.get_logger().info(f"control thread runs under SCHED_FIFO priority {priority}")
    except (PermissionError, OSError) as error:
        node.get_logger().warning(f"realtime_priority {priority} refused ({error}); running with normal "
                                  "scheduling (grant CAP_SYS_NICE or an rtprio limit in limits.conf)")


STATES = {StepState.WAITING: PolicyStatus.STATE_WAITING, StepState.RUNNING: PolicyStatus.STATE_RUNNING,
          StepState.HOLDING: PolicyStatus.STATE_HOLDING, StepState.STOPPED: PolicyStatus.STATE_STOPPED,
          StepState.IDLE: PolicyStatus.STATE_READY}  # idle: ready for the next goal
NETWORK_LOG_EVERY = 100  # answers between log lines on the round trip (the first is logged too)
GIL_SWITCH_INTERVAL = 0.0005  # s; Python's default 5 ms would let an IK solve delay a control tick that long


def main(args: list[str] | None = None) -> int:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    return run_node("vla_executor", ExecutorNode, args, _raise_priority)


if __name__ == "__main__":
    sys.exit(main())

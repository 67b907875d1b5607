"""The policy node: cameras and joint states in, action chunks out, as a ROS 2 lifecycle node.

configure loads the embodiment profile and the checkpoint (and refuses a checkpoint trained for
another embodiment); activate starts serving. Sensor callbacks only convert and buffer; an
observation timer assembles, at a fixed rate, the streams at the capture stamp of the main
camera's newest frame (the others by nearest stamp, as `vla convert` aligned the training data;
a stale or missing stream makes no observation and is named in the status); chunk requests are
answered from the
newest complete observation. The chunk service and the ExecuteInstruction goals run on side
nodes with their own executor threads (see side_executor.py), so sensor callbacks and timers
never wait for an inference; one request is computed at a time.

Interfaces (relative to the node's namespace):
- `~/get_action_chunk` (vla_msgs/GetActionChunk), `~/action_chunk` (vla_msgs/ActionChunk, every
  chunk served), `~/execute_instruction` (vla_msgs/ExecuteInstruction action),
  `~/mark_success` (std_srvs/Trigger: the operator says the running goal succeeded),
  `~/status` (vla_msgs/PolicyStatus), `/diagnostics`.
"""
from __future__ import annotations

import sys
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_srvs.srv import Trigger

from vla_core.backends.base import BackendError, PolicyBackend
from vla_core.embodiment import EmbodimentSpec, load_embodiment
from vla_core.geometry import transform_to_pose7
from vla_core.images import DEFAULT_MAX_PIXELS
from vla_core.model.batching import backward_velocity
from vla_core.runtime.decoding import ChunkDecoder, ChunkStart
from vla_core.runtime.latency import LatencyWindow
from vla_core.runtime.observation_sync import AssembledObservation, ObservationAssembler
from vla_core.runtime.policy_inputs import committed_prefix, policy_observation

from vla_msgs.action import ExecuteInstruction
from vla_msgs.msg import ActionChunk, PolicyStatus
from vla_msgs.srv import GetActionChunk

from .chunk_messages import chunk_to_message
from .image_conversion import ImageConverter
from .node_main import run_node
from .parameters import Param, declare_and_read, in_range, non_empty, one_of, positive
from .ros_time import duration_to_seconds, seconds_to_duration, stamp_to_seconds
from .sensor_inputs import CameraReader, JointStateReader, checked_stamp
from .side_executor import SideExecutor
from .status import CauseLog, StatusReport, diagnostics_message, status_message

JOINT_STREAM = "joint_states"

PARAMETERS = (
    Param("checkpoint", "", "Policy directory (this project's or LeRobot's), or a Hub id in the Hugging Face "
                            "cache; loaded at configure.", non_empty),
    Param("embodiment", "so101", "Embodiment profile: a name from config/embodiments or a YAML path.", non_empty),
    Param("cameras", [], "Camera overrides as 'name:topic' (role and size come from the profile); "
                         "empty = the profile's topics."),
    Param("joint_state_topic", "", "JointState topic; empty = the profile's."),
    Param("image_transport", "raw", "'raw' subscribes to sensor_msgs/Image on each camera topic, "
                                    "'compressed' to CompressedImage on <topic>/compressed.", one_of("raw", "compressed")),
    Param("device", "cpu", "Torch device for the model: cpu, cuda, cuda:N.", non_empty),
    Param("torch_threads", 0, "Intra-op CPU threads of the model; 0 = torch's default. On a machine shared "
                              "with the drivers, fewer threads keep latency steady."),
    Param("inference_compile", False, "torch.compile the model's per-step velocity (compiled during the warm-up "
                                      "chunk at configure; on a CPU it needs a C++ compiler)."),
    Param("inference_cuda_graphs", False, "Replay each chunk's Euler loop from a CUDA graph (device cuda only; one "
                                          "capture per batch and observation-token count)."),
    Param("max_image_pixels", DEFAULT_MAX_PIXELS, "Largest image (width x height) a camera may send; a larger "
                                                  "one is refused as bad_image before it is decoded.", positive),
    Param("future_stamp_tolerance", 0.5, "Seconds a message's stamp may lie ahead of this node's clock (clock "
                                         "skew between computers); later stamps are refused as future_stamp.",
          positive),
    Param("staleness_limit", 0.2, "Seconds a stream's nearest message may be from the observation time.", positive),
    Param("observation_rate_hz", 30.0, "Rate of the observation timeline (nearest-stamp assembly).",
          in_range(1.0, 200.0)),
    Param("instruction", "", "Standing instruction used when no ExecuteInstruction goal runs (empty = none)."),
    Param("seed", -1, "Noise seed of the flow sampler (chunk i uses seed + i); -1 = random."),
    Param("abort_after", 2.0, "Seconds without a complete observation after which a running goal is aborted.",
          positive),
    Param("status_rate_hz", 2.0, "Rate of PolicyStatus and /diagnostics.", in_range(0.1, 50.0)),
    Param("autostart", True, "Configure and activate at start-up (as a lifecycle manager would)."),
)


NO_INSTRUCTION = "no_instruction"  # the refusal cause that tells the executor to go idle


class RequestRefused(Exception):
    """A chunk request the node cannot serve; the message says why."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass(frozen=True)
class ServedChunk:
    """What the node remembers of a chunk it served, to re-express prefixes taken from it."""

    rows: np.ndarray  # (H, K) in the action space, relative to `start`
    start: ChunkStart


@dataclass
class RunningGoal:
    instruction: str
    started: float  # ROS time, seconds
    chunks_at_start: int
    succeeded: bool = False
    replaced: bool = False


class PolicyNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("vla_policy", **kwargs)
        self._ros_entities: list = []  # set before anything can fail: rclpy destroys half-built nodes too
        self._chunk_pub = None
        self._side_executors: list[SideExecutor] = []
        self.policy: PolicyBackend | None = None
        self.params = declare_and_read(self, PARAMETERS)
        self._lock = threading.Lock()
        self._inferring = threading.Lock()  # held while a request's chunk is computed
        self._causes = CauseLog(self.get_logger())
        self._latency = LatencyWindow()
        self._served: OrderedDict[int, ServedChunk] = OrderedDict()
        self._next_chunk_id = 1
        self._chunks = 0
        self._latest: AssembledObservation | None = None
        self._last_complete: float | None = None
        self._goal: RunningGoal | None = None
        self._active = False
        self._error = ""
        self.spec: EmbodimentSpec | None = None
        self._status_pub = self.create_publisher(PolicyStatus, "~/status", 10)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0 / self.params["status_rate_hz"], self._causes.guard("status_failed",
                                                                                  self._publish_status))

    # ---- time -----------------------------------------------------------------------------
    def now(self) -> float:
        return self.get_clock().now().nanoseconds / 1e9

    def _stamp(self, header_stamp, topic: str) -> float:
        """A message's stamp in seconds, refused (InputError) when it lies in the future."""
        return checked_stamp(stamp_to_seconds(header_stamp), self.now(), self.params["future_stamp_tolerance"], topic)

    # ---- lifecycle ------------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self._configure()
        except Exception as error:  # noqa: BLE001 - the transition boundary: report any failure, stay up
            self._error = f"configure failed: {error}"
            self.get_logger().error(self._error)
            self._teardown()
            return TransitionCallbackReturn.FAILURE
        self._error = ""
        self.get_logger().info(f"loaded {self.params['checkpoint']} for {self.spec.name} on {self.params['device']}")
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        from vla_core.backends import load_backends

        if self.params["torch_threads"] > 0:
            import torch

            torch.set_num_threads(self.params["torch_threads"])
        spec = load_embodiment(self.params["embodiment"])
        policy = load_backends(self.params["checkpoint"], [spec], self.params["device"],
                               self.params["inference_compile"], self.params["inference_cuda_graphs"])[spec.name]
        if policy.requirements.object_pose:
            policy.close()
            raise ValueError(f"{self.params['checkpoint']} is a privileged-state diagnostic (privileged_object_pose): "
                             f"it reads the true pose of the named object, which only a simulation knows, so it "
                             f"cannot drive a robot; evaluate it with vla eval")
        cameras = _camera_topics(spec, self.params["cameras"])
        joint_topic = self.params["joint_state_topic"] or spec.joint_state_topic
        self.spec, self.policy = spec, policy
        self.decoder = ChunkDecoder(spec)
        self.joint_reader = JointStateReader(spec.joint_names, joint_topic)
        converter = ImageConverter(max_pixels=self.params["max_image_pixels"])
        self.camera_readers = {c.name: CameraReader(c.name, cameras[c.name], c.width, c.height, converter)
                               for c in spec.cameras}
        self.assembler = ObservationAssembler([JOINT_STREAM, *self.camera_readers], self.params["staleness_limit"])
        # a policy that reads the joints' velocity measures it over one control period, as training did
        self._earlier = {JOINT_STREAM: 1.0 / spec.control_rate_hz} if policy.requirements.joint_velocity else {}
        compressed = self.params["image_transport"] == "compressed"
        guard = self._causes.guard
        entities = [self.create_subscription(JointState, joint_topic, guard("joint_state_callback_failed",
                                                                            self._on_joint_state),
                                             qos_profile_sensor_data)]
        on_image = guard("image_callback_failed", self._on_image)
        for reader in self.camera_readers.values():
            entities.append(self.create_subscription(
                CompressedImage if compressed else Image, reader.topic + ("/compressed" if compressed else ""),
                lambda msg, reader=reader: on_image(reader, msg), qos_profile_sensor_data))
        entities.append(self.create_timer(1.0 / self.params["observation_rate_hz"],
                                          guard("assembly_failed", self._assemble)))
        # a lifecycle publisher, as ros2/demos' lifecycle talker: it publishes only while the node is active
        self._chunk_pub = self.create_lifecycle_publisher(ActionChunk, "~/action_chunk", 10)
        chunks, goals = SideExecutor(self, "chunks"), SideExecutor(self, "goals", threads=4)
        chunks.node.create_service(GetActionChunk, chunks.name("get_action_chunk"), self._on_chunk_request)
        reentrant = ReentrantCallbackGroup()  # a running goal must not block cancel or mark_success
        goals.node.create_service(Trigger, goals.name("mark_success"), self._on_mark_success,
                                  callback_group=reentrant)
        ActionServer(goals.node, ExecuteInstruction, goals.name("execute_instruction"), self._execute_goal,
                     goal_callback=self._on_goal, cancel_callback=self._on_cancel,
                     callback_group=reentrant)
        self._side_executors = [chunks, goals]
        self._ros_entities = entities
        self._warm_up()
        self.get_logger().info(f"cameras {cameras}, joint states on {joint_topic}, images via {converter.backend}")

    def _warm_up(self) -> None:
        """One chunk from blank inputs, so the first real request does not pay for lazy set-up
        (tokeniser, kernels) while the robot waits."""
        spec = self.spec
        lower, upper = self.decoder.kinematics.position_limits()
        blank = {c.name: np.zeros((c.height, c.width, 3), np.uint8) for c in spec.cameras}
        state = np.where(np.isfinite(lower + upper), (lower + upper) / 2, 0.0)
        started = time.perf_counter()
        warm_up = policy_observation(spec, self.decoder, blank, self.decoder.start_from_joints(state),
                                     np.zeros_like(state))
        self.policy.predict_chunk(warm_up, "warm up", seed=0)
        self.get_logger().info(f"model warmed up in {time.perf_counter() - started:.2f} s")

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self._active = True
        return super().on_activate(state)  # activates the lifecycle publishers

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._active = False
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._teardown()
        self._served.clear()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._active = False
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def _teardown(self) -> None:
        for entity in self._ros_entities:
            entity.destroy()
        if self._chunk_pub is not None:
            self.destroy_lifecycle_publisher(self._chunk_pub)
            self._chunk_pub = None
        for side in self._side_executors:
            side.destroy()
        if self.policy is not None:
            self.policy.close()  # a backend's child process ends with the configuration that started it
        self._ros_entities, self._side_executors, self.policy, self.spec = [], [], None, None

    # ---- sensors --------------------------------------------------------------------------
    def _on_joint_state(self, msg: JointState) -> None:
        reader = self.joint_reader
        sample = self._causes.attempt(lambda: (self._stamp(msg.header.stamp, reader.topic),
                                               reader.read(msg.name, msg.position)))
        if sample is not None:
            self.assembler.add(JOINT_STREAM, *sample)

    def _on_image(self, reader: CameraReader, msg) -> None:
        sample = self._causes.attempt(lambda: (self._stamp(msg.header.stamp, reader.topic), reader.read(msg)))
        if sample is not None:
            self.assembler.add(reader.name, *sample)

    def _assemble(self) -> None:
        """The observation at the main camera's newest capture stamp, as training aligned its data."""
        assembled = self.assembler.assemble_at_newest(self.spec.main_camera.name, self.now(), self._earlier)
        with self._lock:
            self._latest = assembled
            if assembled.complete:
                self._last_complete = assembled.stamp

    # ---- chunk service --------------------------------------------------------------------
    def _on_chunk_request(self, request: GetActionChunk.Request,
                          response: GetActionChunk.Response) -> GetActionChunk.Response:
        """Every request gets an answer: a chunk, or a refusal with its reason. An exception that
        escaped here would end the service's thread and leave the executor waiting forever."""
        try:
            response.chunk = self._serve(request)
            response.success = True
        except Exception as error:  # noqa: BLE001 - the service boundary: anything unforeseen is a refusal too
            refusal = _as_refusal(error)
            if not isinstance(error, RequestRefused):
                self.get_logger().error(f"{refusal}\n{traceback.format_exc()}")
            self._causes.report(refusal.cause, f"chunk request refused: {refusal}")
            response.success, response.message = False, str(refusal)
            response.idle = refusal.cause == NO_INSTRUCTION
        return response

    def _instruction(self, requested: str) -> str:
        with self._lock:
            goal = self._goal
        instruction = requested or (goal.instruction if goal else "") or self.params["instruction"]
        if not instruction:
            raise RequestRefused(NO_INSTRUCTION, "no instruction: send an ExecuteInstruction goal, put one in "
                                                   "the request, or set the 'instruction' parameter")
        return instruction

    def _observation(self, budget: float) -> AssembledObservation:
        with self._lock:
            latest = self._latest
        if latest is None:
            raise RequestRefused("no_observation", "no observation assembled yet")
        if not latest.complete:
            raise RequestRefused("incomplete_observation", "no complete observation: " + "; ".join(latest.problems))
        age = self.now() - latest.stamp
        if budget > 0 and age > budget:
            raise RequestRefused("observation_too_old", f"newest observation is {age:.3f} s old, over the request's "
                                                        f"latency budget of {budget:.3f} s")
        return latest

    def _prefix(self, request: GetActionChunk.Request, start: ChunkStart) -> np.ndarray | None:
        """The committed rows of the request, re-expressed relative to the new chunk start."""
        if request.prefix_length == 0:
            return None
        dims = self.spec.action_dim
        committed = np.asarray(request.committed_actions, dtype=np.float64)
        if committed.size != request.prefix_length * dims:
            raise RequestRefused("bad_prefix", f"committed_actions must hold prefix_length x {dims} = "
                                               f"{request.prefix_length * dims} values, got {committed.size}")
        if not np.all(np.isfinite(committed)):
            bad_rows = sorted({int(i) // dims for i in np.flatnonzero(~np.isfinite(committed))})
            raise RequestRefused("bad_prefix", f"committed_actions hold {int(np.sum(~np.isfinite(committed)))} NaN or "
                                               f"inf value(s) (prefix rows {bad_rows}); expected "
                                               f"{request.prefix_length * dims} finite values")
        source = self._served.get(request.source_chunk_id)
        if source is None:
            raise RequestRefused("unknown_source_chunk", f"source chunk {request.source_chunk_id} is not one of the "
                                                         f"{len(self._served)} chunks this node remembers")
        first = request.source_start_step
        if first + request.prefix_length > len(source.rows):
            raise RequestRefused("bad_prefix", f"prefix rows {first}..{first + request.prefix_length - 1} are outside "
                                               f"source chunk {request.source_chunk_id}'s {len(source.rows)} rows")
        try:
            return committed_prefix(self.decoder, source.rows, source.start, first,
                                    committed.reshape(request.prefix_length, dims), start)
        except ValueError as error:  # e.g. an all-zero rotate-6D column: no rotation to re-express
            raise RequestRefused("bad_prefix", f"the committed rows of source chunk {request.source_chunk_id} are not "
                                               f"valid {self.spec.action_space} actions: {error}") from error

    def _serve(self, request: GetActionChunk.Request) -> ActionChunk:
        if not self._active or self.policy is None:
            raise RequestRefused("inactive", "the policy node is not active")
        instruction = self._instruction(request.instruction)
        observation = self._observation(duration_to_seconds(request.latency_budget))
        joints = observation.samples[JOINT_STREAM].data
        start = self.decoder.start_from_joints(joints)
        prefix = self._prefix(request, start)
        spec = self.spec
        images = {c.name: observation.samples[c.name].data for c in spec.cameras}
        inputs = policy_observation(spec, self.decoder, images, start, _joint_velocity(observation))
        if not self._inferring.acquire(blocking=False):
            raise RequestRefused("busy", "a chunk is being computed for an earlier request; one request at a time")
        try:
            with self._lock:
                chunk_id = self._next_chunk_id
                self._next_chunk_id += 1
            seed = self.params["seed"] + chunk_id if self.params["seed"] >= 0 else None
            predicted = self.policy.predict_chunk(inputs, instruction, prefix, seed)
        finally:
            self._inferring.release()
        self.get_logger().debug(f"chunk {chunk_id}: {predicted.latency_seconds * 1000:.1f} ms, "
                                f"prefix {predicted.prefix_length}")
        msg = chunk_to_message(
            chunk_id, predicted.actions, stamp=observation.stamp, frame_id=spec.base_frame, embodiment=spec.name,
            action_space=spec.action_space, channel_names=spec.channel_names,
            target_names=self.decoder.target_names(), dt=1.0 / spec.control_rate_hz,
            start_poses=np.array([transform_to_pose7(p) for p in start.poses]).reshape(-1, 7),
            start_positions=joints if not self.decoder.space.uses_poses else np.zeros(0),
            prefix_length=predicted.prefix_length, inference_latency=predicted.latency_seconds)
        with self._lock:
            self._served[chunk_id] = ServedChunk(predicted.actions, start)
            while len(self._served) > 32:
                self._served.popitem(last=False)
            self._chunks += 1
            self._latency.add(predicted.latency_seconds)
        publisher = self._chunk_pub  # None once a cleanup tore it down meanwhile
        if publisher is not None:
            publisher.publish(msg)
        return msg

    # ---- ExecuteInstruction ---------------------------------------------------------------
    def _on_goal(self, goal: ExecuteInstruction.Goal) -> GoalResponse:
        try:
            return self._judge_goal(goal)
        except Exception as error:  # noqa: BLE001 - the action boundary: an unforeseen failure rejects the goal
            self._causes.report("goal_failed", f"goal {goal.instruction!r} rejected: {type(error).__name__}: {error}")
            return GoalResponse.REJECT

    def _on_cancel(self, goal_handle) -> CancelResponse:
        return CancelResponse.ACCEPT

    def _judge_goal(self, goal: ExecuteInstruction.Goal) -> GoalResponse:
        if not self._active or not goal.instruction.strip():
            self.get_logger().warning(f"rejected goal {goal.instruction!r}: "
                                      f"{'node not active' if not self._active else 'empty instruction'}")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _on_mark_success(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            if self._goal is not None:
                self._goal.succeeded = True
                response.success, response.message = True, f"goal {self._goal.instruction!r} marked successful"
            else:
                response.success, response.message = False, "no ExecuteInstruction goal is running"
        return response

    def _execute_goal(self, goal_handle) -> ExecuteInstruction.Result:
        """Run a goal to its outcome; an unforeseen failure aborts it with the reason, never
        leaves it hanging."""
        try:
            return self._run_goal(goal_handle)
        except Exception as error:  # noqa: BLE001 - the action boundary
            reason = f"the goal failed inside the policy node: {type(error).__name__}: {error}"
            self.get_logger().error(f"{reason}\n{traceback.format_exc()}")
            self._causes.report("goal_failed", reason)
            with self._lock:
                self._goal = None
            if goal_handle.is_active:
                goal_handle.abort()
            return ExecuteInstruction.Result(outcome=ExecuteInstruction.Result.OUTCOME_ABORTED, reason=reason)

    def _run_goal(self, goal_handle) -> ExecuteInstruction.Result:
        request = goal_handle.request
        limit = duration_to_seconds(request.time_limit)
        with self._lock:
            if self._goal is not None:
                self._goal.replaced = True
            goal = RunningGoal(request.instruction.strip(), self.now(), self._chunks)
            self._goal = goal
        self.get_logger().info(f"executing {goal.instruction!r}" + (f" for at most {limit:.1f} s" if limit else ""))
        outcome, reason = self._wait_for_outcome(goal_handle, goal, limit)
        with self._lock:
            if self._goal is goal:
                self._goal = None
            executed = self._chunks - goal.chunks_at_start
        result = ExecuteInstruction.Result(outcome=outcome, reason=reason, chunks_executed=executed,
                                           elapsed=seconds_to_duration(max(0.0, self.now() - goal.started)))
        if outcome == ExecuteInstruction.Result.OUTCOME_SUCCEEDED:
            goal_handle.succeed()
        elif outcome == ExecuteInstruction.Result.OUTCOME_CANCELED:
            goal_handle.canceled()
        else:
            goal_handle.abort()
        self.get_logger().info(f"goal {goal.instruction!r} ended: {reason}")
        return result

    def _wait_for_outcome(self, goal_handle, goal: RunningGoal, limit: float) -> tuple[int, str]:
        Result = ExecuteInstruction.Result
        last_feedback = 0.0
        while True:
            now = self.now()
            with self._lock:
                last_complete = self._last_complete
                chunks = self._chunks - goal.chunks_at_start
                latency = self._latency.summary()
            if goal_handle.is_cancel_requested:
                return Result.OUTCOME_CANCELED, "canceled by the client"
            if goal.succeeded:
                return Result.OUTCOME_SUCCEEDED, "marked successful"
            if goal.replaced:
                return Result.OUTCOME_ABORTED, "replaced by a newer goal"
            if not self._active:
                return Result.OUTCOME_ABORTED, "the policy node was deactivated"
            if limit and now - goal.started > limit:
                return Result.OUTCOME_TIMED_OUT, f"time limit of {limit:.1f} s reached"
            quiet_since = max(goal.started, last_complete or goal.started)
            if now - quiet_since > self.params["abort_after"]:
                with self._lock:
                    problems = self._latest.problems if self._latest else ["no observation"]
                return Result.OUTCOME_ABORTED, (f"no complete observation for {now - quiet_since:.1f} s: "
                                                + "; ".join(problems))
            if time.monotonic() - last_feedback >= 0.5:
                last_feedback = time.monotonic()
                goal_handle.publish_feedback(ExecuteInstruction.Feedback(
                    chunks_executed=chunks, latency_last=latency.last, latency_mean=latency.mean,
                    elapsed=seconds_to_duration(max(0.0, now - goal.started))))
            time.sleep(0.02)

    # ---- status ---------------------------------------------------------------------------
    def _report(self) -> StatusReport:
        with self._lock:
            latest, goal = self._latest, self._goal
            chunks, latency = self._chunks, self._latency.summary()
        dead = [side.failure for side in self._side_executors if side.failure]
        if self._error or dead:
            state, detail = PolicyStatus.STATE_ERROR, "; ".join([self._error] * bool(self._error) + dead)
        elif self.policy is None:
            state, detail = PolicyStatus.STATE_UNCONFIGURED, "no checkpoint loaded"
        elif not self._active:
            state, detail = PolicyStatus.STATE_INACTIVE, "checkpoint loaded, not serving"
        elif latest is None or not latest.complete:
            state = PolicyStatus.STATE_WAITING
            detail = "; ".join(latest.problems) if latest else "no observation assembled yet"
        elif goal is not None:
            state, detail = PolicyStatus.STATE_RUNNING, f"executing {goal.instruction!r}"
        else:
            state, detail = PolicyStatus.STATE_READY, "all inputs fresh"
        policy = self.policy  # a cleanup may clear it meanwhile
        if policy is not None and not policy.requirements.accepts_prefix:
            detail += (f"; {policy.requirements.backend} takes no committed prefix: async mode switches to a new "
                       f"chunk at the latency-matched row")
        return StatusReport(state, detail, self.params["checkpoint"], self.params["embodiment"],
                            goal.instruction if goal else self.params["instruction"], chunks, latency,
                            rejected_inputs=self._causes.total, counters=dict(self._causes.counts),
                            last_messages=dict(self._causes.last))

    def _publish_status(self) -> None:
        report = self._report()
        stamp = self.get_clock().now().to_msg()
        self._status_pub.publish(status_message(report, stamp))
        self._diagnostics_pub.publish(diagnostics_message(report, f"{self.get_fully_qualified_name()}: policy",
                                                          report.model, stamp))

    def destroy_node(self) -> None:
        self._active = False
        self._teardown()
        super().destroy_node()


def _joint_velocity(observation: AssembledObservation) -> np.ndarray | None:
    """The joints' velocity from the joint state chosen and the one a control period before it
    (None when the policy does not read it, so the assembler kept no earlier sample)."""
    earlier = observation.earlier.get(JOINT_STREAM)
    if earlier is None:
        return None
    current = observation.samples[JOINT_STREAM]
    return backward_velocity(current.data, earlier.data, current.stamp - earlier.stamp)


def _camera_topics(spec: EmbodimentSpec, overrides: list[str]) -> dict[str, str]:
    """Camera name -> topic: the profile's, with 'name:topic' overrides applied."""
    topics = {camera.name: camera.topic for camera in spec.cameras}
    for entry in overrides:
        name, sep, topic = entry.partition(":")
        if not sep or name not in topics or not topic:
            raise ValueError(f"camera override {entry!r} must be 'name:topic' with name one of {sorted(topics)}")
        topics[name] = topic
    return topics


def _as_refusal(error: Exception) -> RequestRefused:
    """A refusal as is; a backend's failure under its own cause (e.g. its child process crashed);
    anything else as request_failed with the exception's type and text."""
    if isinstance(error, RequestRefused):
        return error
    if isinstance(error, BackendError):
        return RequestRefused(error.cause, str(error))
    return RequestRefused("request_failed",
                          f"the chunk request failed inside the policy node: {type(error).__name__}: {error}")


def _autostart(node: PolicyNode) -> None:
    """Configure and activate at start-up, as a lifecycle manager would, when `autostart` is set."""
    if node.params["autostart"]:
        node.trigger_configure()
        if node.policy is not None:
            node.trigger_activate()


def main(args: list[str] | None = None) -> int:
    return run_node("vla_policy", PolicyNode, args, _autostart)


if __name__ == "__main__":
    sys.exit(main())

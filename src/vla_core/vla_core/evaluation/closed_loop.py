"""One closed-loop episode in simulated time: the executor node's loop without ROS.

Time is the simulation's. Every control tick (the profile's rate) does what the executor node
does: hand an arrived chunk to the `ChunkScheduler`, ask it for this tick's target and maybe a
request, pass the target through the `SafetyFilter` and command it like a joint trajectory
controller would receive it (`TrajectoryFollower`, interpolated over one tick, followed at
every physics step). A request renders the cameras at that instant (the only time anything is
rendered: rendering dominates the cost on a CPU) and runs the policy and the `ChunkDecoder`
at once, timing them; the chunk then arrives that much simulated time later, while the
simulation goes on: in async mode the robot keeps executing the committed rows meanwhile, in
sync mode it holds. A fixed `latency` can replace the measurement, to model another computer
or to test the timing exactly.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from vla_core.embodiment import EmbodimentSpec
from vla_core.evaluation.environments import SimScene, SimTaskDefinition
from vla_core.evaluation.policies import PolicyUnderTest
from vla_core.model.batching import Observation, backward_velocity
from vla_core.runtime.decoding import ChunkDecoder, ChunkStart
from vla_core.runtime.safety import JointLimits, LimitPolicy, SafetyFilter, WorkspaceBox
from vla_core.runtime.scheduling import ChunkRequest, ChunkScheduler, ExecutionMode, SchedulerConfig
from vla_core.sim.trajectory_follower import TrajectoryFollower


@dataclass(frozen=True)
class ExecutionSettings:
    """The executor node's parameters that shape execution, with the node's defaults
    (`config/policy.yaml` overrides them through `from_params_file`)."""

    mode: ExecutionMode = SchedulerConfig.mode
    control_rate_hz: float = 0.0  # 0 = the profile's rate
    execute_steps: int = SchedulerConfig.execute_steps
    ensemble_interval: int = SchedulerConfig.ensemble_interval
    ensemble_decay: float = SchedulerConfig.ensemble_decay
    limit_policy: str = "clamp"
    max_joint_velocity: float = 3.0
    max_jump: float = 0.5
    workspace: tuple[float, ...] = (-1.0, -1.0, -0.2, 1.0, 1.0, 1.5)

    @classmethod
    def from_params_file(cls, path: Path, **overrides) -> ExecutionSettings:
        """The parameters a node parameter file gives `vla_executor` (in any namespace), then `overrides`."""
        from vla_core.up import node_parameters

        params = node_parameters(path, "vla_executor")
        names = {f.name for f in fields(cls)}
        values = {name: params[name] for name in names if name in params}
        values.update(overrides)
        values["mode"] = ExecutionMode(values.get("mode", cls.mode))
        if "workspace" in values:
            values["workspace"] = tuple(values["workspace"])
        return cls(**values)

    def scheduler_config(self, chunk_size: int) -> SchedulerConfig:
        """The executor's chunk scheduling with these settings, for chunks of `chunk_size` rows."""
        return SchedulerConfig(self.mode, chunk_size, self.execute_steps, ensemble_interval=self.ensemble_interval,
                               ensemble_decay=self.ensemble_decay)


def build_safety_filter(spec: EmbodimentSpec, decoder: ChunkDecoder, dt: float,
                        settings: ExecutionSettings) -> SafetyFilter:
    """The executor node's filter: robot-model limits (velocity capped), grippers exempt from
    `max_jump`, the workspace box."""
    kinematics = decoder.kinematics
    lower, upper = kinematics.position_limits()
    velocity = np.minimum(kinematics.velocity_limits(), settings.max_joint_velocity)
    grippers = {arm.gripper_joint for arm in spec.arms}
    max_jump = np.array([np.inf if name in grippers else settings.max_jump for name in spec.joint_names])
    workspace = (WorkspaceBox(np.array(settings.workspace[:3]), np.array(settings.workspace[3:]))
                 if settings.workspace else None)
    return SafetyFilter(JointLimits(spec.joint_names, lower, upper, velocity), dt,
                        LimitPolicy(settings.limit_policy), max_jump, workspace)


@dataclass
class EpisodeTrace:
    """Per control tick: simulated time, commanded target (NaN rows while holding) and measured joints;
    per chunk: the tick of its observation and its compute latency."""

    times: list[float] = field(default_factory=list)
    commands: list[np.ndarray] = field(default_factory=list)
    measured: list[np.ndarray] = field(default_factory=list)
    chunk_ids: list[int] = field(default_factory=list)  # 0 = no scheduled target this tick
    rows: list[int] = field(default_factory=list)
    request_ticks: dict[int, int] = field(default_factory=dict)  # chunk id -> tick of its observation
    frames: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (time, main camera image)


@dataclass
class EpisodeResult:
    seed: int
    wording: str
    instruction: str
    success: bool
    time_to_success: float | None  # simulated seconds
    duration: float  # simulated seconds the episode ran
    wall_seconds: float
    latencies: list[float]  # compute latency per chunk (s)
    starved_ticks: int  # async ticks with no row to execute (the chunk came too late)
    held_ticks: int  # ticks holding while commanding (waiting in sync, or a refused target)
    target_ticks: int  # ticks the scheduler gave a target for
    refused_ticks: int  # of those, targets the safety filter refused (for eef spaces mostly rows IK could not reach)
    safety_counts: dict[str, int]
    # m: nearest the tool (as the scripted teleoperator places it: the SO-101's end-effector frame on its
    # fixed jaw, 3.4 cm from a grasped cube's centre; the middle between the ALOHA's pads) came to the
    # named cube's centre, over the control ticks
    closest_approach: float
    trace: EpisodeTrace


@dataclass
class _InFlight:
    request: ChunkRequest
    chunk_id: int
    targets: np.ndarray
    usable_tick: int


class ClosedLoop:
    """Runs episodes of one (embodiment, task) with one policy and one execution setting."""

    def __init__(self, definition: SimTaskDefinition, spec: EmbodimentSpec, policy: PolicyUnderTest,
                 settings: ExecutionSettings, scene: SimScene | None = None, latency: float | None = None,
                 decoder: ChunkDecoder | None = None) -> None:
        if latency is not None and latency < 0:
            raise ValueError(f"latency must be >= 0 s (or None to measure it), got {latency}")
        self.definition, self.spec, self.policy, self.settings = definition, spec, policy, settings
        self.rate = settings.control_rate_hz or spec.control_rate_hz
        self.dt = 1.0 / self.rate
        self.latency = latency
        self.decoder = decoder or ChunkDecoder(spec)
        sizes = {(c.width, c.height) for c in spec.cameras}
        if len(sizes) != 1 or len({*sizes.pop()}) != 1:
            raise ValueError(f"the simulated cameras are square and all one size; {spec.name}'s profile asks for "
                             f"{[(c.name, c.width, c.height) for c in spec.cameras]}")
        self.scene = scene or definition.make_scene(spec.cameras[0].width)

    def close(self) -> None:
        self.scene.close()

    # ---- one episode -------------------------------------------------------------------------
    def run(self, seed: int, wording: str = "training", time_limit: float | None = None,
            keep_frames: bool = False) -> EpisodeResult:
        started = time.perf_counter()
        scene, spec = self.scene, self.spec
        scene.reset(seed)
        task = self.definition.draw_task(seed, scene)
        instruction = task.instruction(wording, seed)
        self.policy.start_episode(scene, task, seed)
        scheduler = ChunkScheduler(self.settings.scheduler_config(spec.chunk_size))
        safety = build_safety_filter(spec, self.decoder, self.dt, self.settings)
        follower = TrajectoryFollower(scene.joint_positions())
        trace = EpisodeTrace()
        served: dict[int, tuple[np.ndarray, ChunkStart]] = {}
        latencies: list[float] = []
        in_flight: _InFlight | None = None
        last_command: np.ndarray | None = None
        measured = scene.joint_positions()  # the previous tick's, which the joints' velocity is measured from
        starved = held = targeted = refused = 0
        success_at: float | None = None
        closest = math.inf
        limit = self.definition.time_limit if time_limit is None else time_limit
        for tick in range(int(math.ceil(limit * self.rate - 1e-9))):
            now = tick * self.dt
            if in_flight is not None and in_flight.usable_tick == tick:
                scheduler.on_chunk(in_flight.request.request_id, in_flight.chunk_id, in_flight.targets, tick - 1)
                in_flight = None
            decision = scheduler.tick(tick)
            if decision.request is not None:
                in_flight = self._request(decision.request, tick, instruction, seed, measured, served, latencies,
                                          trace if keep_frames else None)
                trace.request_ticks[in_flight.chunk_id] = tick
            measured = scene.joint_positions()
            closest = min(closest, self.definition.tool_distance(scene, task))
            command = None
            if decision.target is not None:
                previous = last_command if last_command is not None else measured
                positions = (self.decoder.end_effector_positions(decision.target)
                             if safety.workspace is not None and np.all(np.isfinite(decision.target)) else None)
                command = safety.check(decision.target, previous, positions).command
                targeted += 1
                refused += command is None
            if command is not None:
                last_command = command
                follower.replace(now, np.array([self.dt]), command[None], now)
            elif last_command is not None:
                held += 1  # the follower keeps the last command: that is the hold
                starved += decision.target is None and self.settings.mode is ExecutionMode.ASYNC
            trace.times.append(now)
            trace.commands.append(command if command is not None else np.full(spec.state_dim, np.nan))
            trace.measured.append(measured)
            trace.chunk_ids.append(decision.chunk_id if command is not None else 0)
            trace.rows.append(decision.row if command is not None else -1)
            self._advance(follower, (tick + 1) * self.dt)
            if self.definition.succeeded(scene, task):
                success_at = scene.time
                break
        return EpisodeResult(seed, wording, instruction, success_at is not None, success_at, scene.time,
                             time.perf_counter() - started, latencies, starved, held, targeted, refused,
                             dict(safety.counts), closest, trace)

    # ---- internals ---------------------------------------------------------------------------
    def _advance(self, follower: TrajectoryFollower, until: float) -> None:
        """Physics up to `until`, the follower's interpolated target applied at every step."""
        scene = self.scene
        while scene.time < until - 0.5 * scene.timestep:
            scene.command(follower.target(scene.time))
            scene.step(scene.timestep)

    def _request(self, request: ChunkRequest, tick: int, instruction: str, seed: int, earlier_joints: np.ndarray,
                 served: dict[int, tuple[np.ndarray, ChunkStart]], latencies: list[float],
                 trace: EpisodeTrace | None) -> _InFlight:
        """Observe now (`earlier_joints`: measured one tick ago), infer and decode now; the chunk
        is usable `latency` later (at least next tick)."""
        spec, decoder = self.spec, self.decoder
        joints = self.scene.joint_positions()
        images = {camera.name: self.scene.render(camera.name) for camera in spec.cameras}
        if trace is not None:
            trace.frames.append((self.scene.time, images[spec.main_camera.name]))
        computing = time.perf_counter()
        start = decoder.start_from_joints(joints)
        prefix = None
        if request.source_chunk_id and len(request.committed_rows):
            rows, source = served[request.source_chunk_id]
            end = request.source_start_step + len(request.committed_rows)
            prefix = decoder.reexpress(rows[:end], request.source_start_step, source, start)
        chunk_id = len(served) + 1
        observation = Observation(images[spec.main_camera.name], joints,
                                  {camera.name: images[camera.name] for camera in spec.wrist_cameras},
                                  tool_poses=decoder.tool_poses(start),
                                  joint_velocity=backward_velocity(joints, earlier_joints, self.dt))
        predicted = self.policy.predict_chunk(observation, instruction, spec.name, prefix, seed * 1000 + chunk_id)
        targets = decoder.joint_targets(predicted.actions, start, joints).positions
        measured = time.perf_counter() - computing
        latencies.append(measured)
        served[chunk_id] = (predicted.actions, start)
        latency = measured if self.latency is None else self.latency
        usable = tick + max(1, math.ceil(latency / self.dt - 1e-9))
        return _InFlight(request, chunk_id, targets, usable)

"""One closed-loop episode in simulated time: the executor node's loop without ROS.

Time is the simulation's. Every control tick (the profile's rate) runs the executor node's own
`ControlStep` (`vla_core.runtime.control_step`: chunk scheduling, safety filter, holds) and
sends its command the way a joint trajectory controller receives it from the node (the target
one tick ahead, the checked rows after it; `TrajectoryFollower`, followed at every physics
step). A request renders the cameras at that instant (the only time anything is rendered:
rendering dominates the cost on a CPU), builds the observation and the committed prefix as the
policy node does (`vla_core.runtime.policy_inputs`), and runs the policy and the chunk's
decoding at once, timing them; the chunk then arrives that much simulated time later, while the
simulation goes on: in async mode the robot keeps executing the committed rows meanwhile, in
sync mode it holds. A fixed `latency` can replace the measurement, to model another computer
or to test the timing exactly.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from vla_core.embodiment import EmbodimentSpec
from vla_core.evaluation.environments import SimScene, SimTaskDefinition
from vla_core.evaluation.policies import PolicyUnderTest
from vla_core.model.batching import backward_velocity
from vla_core.runtime.control_step import ControlStep, ExecutionSettings, StepOutcome, StepRequest
from vla_core.runtime.decoding import ChunkDecoder, ChunkStart
from vla_core.runtime.policy_inputs import committed_prefix, policy_observation
from vla_core.sim.trajectory_follower import TrajectoryFollower


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
    request: StepRequest
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
        step = ControlStep(spec, self.decoder, self.settings)
        follower = TrajectoryFollower(scene.joint_positions())
        trace = EpisodeTrace()
        served: dict[int, tuple[np.ndarray, ChunkStart]] = {}
        latencies: list[float] = []
        in_flight: _InFlight | None = None
        measured = scene.joint_positions()
        held = targeted = refused = 0
        success_at: float | None = None
        closest = math.inf
        limit = self.definition.time_limit if time_limit is None else time_limit
        for tick in range(int(math.ceil(limit * self.rate - 1e-9))):
            now = tick * self.dt
            if in_flight is not None and in_flight.usable_tick == tick:
                step.on_chunk(in_flight.request, in_flight.chunk_id, in_flight.targets, now)
                in_flight = None
            earlier, measured = measured, scene.joint_positions()  # the joints' velocity is measured from `earlier`
            step.observe_joints(measured, now)
            outcome = step.tick(now)
            if outcome.request is not None:
                in_flight = self._request(step, outcome.request, tick, instruction, seed, earlier, served, latencies,
                                          trace if keep_frames else None)
                trace.request_ticks[in_flight.chunk_id] = tick
            closest = min(closest, self.definition.tool_distance(scene, task))
            self._send(follower, outcome, now)
            targeted += outcome.targeted
            refused += outcome.targeted and not outcome.fresh
            held += outcome.holding
            self._record(trace, outcome, now, measured)
            self._advance(follower, (tick + 1) * self.dt)
            if self.definition.succeeded(scene, task):
                success_at = scene.time
                break
        return EpisodeResult(seed, wording, instruction, success_at is not None, success_at, scene.time,
                             time.perf_counter() - started, latencies, step.counts["starved_ticks"], held, targeted,
                             refused, dict(step.safety.counts), closest, trace)

    # ---- internals ---------------------------------------------------------------------------
    def _advance(self, follower: TrajectoryFollower, until: float) -> None:
        """Physics up to `until`, the follower's interpolated target applied at every step."""
        scene = self.scene
        while scene.time < until - 0.5 * scene.timestep:
            scene.command(follower.target(scene.time))
            scene.step(scene.timestep)

    def _send(self, follower: TrajectoryFollower, outcome: StepOutcome, now: float) -> None:
        """What the executor's joint trajectory command sends: the row one tick ahead, then the
        checked look-ahead rows a tick apart (the next tick replaces them)."""
        if outcome.command is not None:
            rows = np.vstack([outcome.command[None], outcome.lookahead])
            follower.replace(now, self.dt * np.arange(1, len(rows) + 1), rows, now)

    def _record(self, trace: EpisodeTrace, outcome: StepOutcome, now: float, measured: np.ndarray) -> None:
        trace.times.append(now)
        trace.commands.append(outcome.command if outcome.fresh else np.full(self.spec.state_dim, np.nan))
        trace.measured.append(measured)
        trace.chunk_ids.append(outcome.chunk_id)
        trace.rows.append(outcome.row)

    def _request(self, step: ControlStep, request: StepRequest, tick: int, instruction: str, seed: int,
                 earlier_joints: np.ndarray, served: dict[int, tuple[np.ndarray, ChunkStart]],
                 latencies: list[float], trace: EpisodeTrace | None) -> _InFlight:
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
        chunk = request.chunk
        if chunk.has_prefix:
            rows, source = served[chunk.source_chunk_id]
            prefix = committed_prefix(decoder, rows, source, chunk.source_start_step, chunk.committed_actions(rows),
                                      start)
        chunk_id = len(served) + 1
        observation = policy_observation(spec, decoder, images, start,
                                         backward_velocity(joints, earlier_joints, self.dt))
        predicted = self.policy.predict_chunk(observation, instruction, spec.name, prefix, seed * 1000 + chunk_id)
        targets = step.chunk_targets(request, predicted.actions, start).positions
        measured = time.perf_counter() - computing
        latencies.append(measured)
        served[chunk_id] = (predicted.actions, start)
        latency = measured if self.latency is None else self.latency
        usable = tick + max(1, math.ceil(latency / self.dt - 1e-9))
        return _InFlight(request, chunk_id, targets, usable)

"""One executor control tick, without ROS: what the robot is commanded, written once.

The executor node and `vla eval` both run a `ControlStep` (the node on the ROS clock, the
evaluation on simulated time), so what is evaluated is exactly what runs on the robot. Every
tick it asks the `ChunkScheduler` for this tick's target and maybe a chunk request (synchronous,
asynchronous with a committed prefix, or temporal ensembling), passes the target through the
`SafetyFilter` (robot-model limits, grippers exempt from `max_jump`, the workspace box), and
says what to send: the safe target and the checked rows after it, the hold position, or
nothing, with the state it is in and why.

What stays with the callers is transport: the node's service client, retries and request
timeouts, its command interface and status topics; the evaluation's simulated latency and
trajectory follower. They feed the step joints (`observe_joints`) and answered chunks
(`on_chunk`), call `tick` at the control rate and send its `StepOutcome`.

Holding: while it commands, the step sends the hold position (the last safe command) whenever
it has no safe target: waiting for a chunk (sync waits by design), a refused target, stopped,
or a watchdog (joint states or chunks stopped arriving). Before the first safe target, and
after the policy said it has no instruction (idle), it sends nothing: the robot's controller
keeps the last command.
"""
from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from vla_core.config_files import node_parameters
from vla_core.embodiment import EmbodimentSpec
from vla_core.kinematics import RobotKinematics
from vla_core.runtime.decoding import ChunkDecoder, ChunkStart, JointTargets
from vla_core.runtime.safety import JointLimits, LimitPolicy, SafetyFilter, Watchdog, WorkspaceBox
from vla_core.runtime.scheduling import ChunkRequest, ChunkScheduler, ExecutionMode, SchedulerConfig, TickDecision


@dataclass(frozen=True)
class ExecutionSettings:
    """The executor node's parameters that shape execution, with the node's defaults (the node
    declares its parameters with these; `config/policy.yaml` overrides them)."""

    mode: ExecutionMode = SchedulerConfig.mode
    control_rate_hz: float = 0.0  # 0 = the profile's rate
    execute_steps: int = SchedulerConfig.execute_steps
    ensemble_interval: int = SchedulerConfig.ensemble_interval
    ensemble_decay: float = SchedulerConfig.ensemble_decay
    limit_policy: str = "clamp"
    max_joint_velocity: float = 3.0
    max_jump: float = 0.5
    workspace: tuple[float, ...] = (-1.0, -1.0, -0.2, 1.0, 1.0, 1.5)
    joint_state_timeout: float = 0.25
    chunk_timeout: float = 1.5

    @classmethod
    def from_parameters(cls, params: Mapping[str, object], **overrides) -> ExecutionSettings:
        """The settings among a node's parameters (others are ignored), then `overrides`."""
        values = {f.name: params[f.name] for f in fields(cls) if f.name in params}
        values.update(overrides)
        values["mode"] = ExecutionMode(values.get("mode", cls.mode))
        if "workspace" in values:
            values["workspace"] = tuple(values["workspace"])
        return cls(**values)

    @classmethod
    def from_params_file(cls, path: Path, **overrides) -> ExecutionSettings:
        """The parameters a node parameter file gives `vla_executor` (in any namespace), then `overrides`."""
        return cls.from_parameters(node_parameters(path, "vla_executor"), **overrides)

    def control_period(self, spec: EmbodimentSpec) -> float:
        return 1.0 / (self.control_rate_hz or spec.control_rate_hz)

    def scheduler_config(self, chunk_size: int) -> SchedulerConfig:
        """The executor's chunk scheduling with these settings, for chunks of `chunk_size` rows."""
        return SchedulerConfig(self.mode, chunk_size, self.execute_steps, ensemble_interval=self.ensemble_interval,
                               ensemble_decay=self.ensemble_decay)

    def safety_filter(self, spec: EmbodimentSpec, kinematics: RobotKinematics, dt: float) -> SafetyFilter:
        """Robot-model limits (velocity capped at `max_joint_velocity`), grippers exempt from
        `max_jump` (they open and close in one step), the workspace box unless it is empty."""
        lower, upper = kinematics.position_limits()
        velocity = np.minimum(kinematics.velocity_limits(), self.max_joint_velocity)
        grippers = {arm.gripper_joint for arm in spec.arms}
        max_jump = np.array([np.inf if name in grippers else self.max_jump for name in spec.joint_names])
        workspace = (WorkspaceBox(np.array(self.workspace[:3]), np.array(self.workspace[3:]))
                     if self.workspace else None)
        return SafetyFilter(JointLimits(spec.joint_names, lower, upper, velocity), dt,
                            LimitPolicy(self.limit_policy), max_jump, workspace)


class StepState(str, enum.Enum):
    WAITING = "waiting"  # no joint states yet, or no target yet (first chunk, or a sync answer)
    RUNNING = "running"  # a safe target is commanded
    HOLDING = "holding"  # a target was refused, or a watchdog fired
    STOPPED = "stopped"  # stopped by the operator; resume needs a fresh chunk
    IDLE = "idle"  # the policy has no instruction: nothing is commanded


@dataclass(frozen=True)
class StepRequest:
    """A chunk request of the scheduler, with the joints measured at its tick: IK for the answer
    starts from them (the robot where the chunk's observation saw it), whenever the answer comes."""

    chunk: ChunkRequest
    ik_seed: np.ndarray | None  # None: no joint state yet, IK starts from the chunk-start joints


@dataclass(frozen=True)
class StepOutcome:
    """What one tick decided."""

    command: np.ndarray | None  # joint row to send now; None = send nothing
    lookahead: np.ndarray  # (n, state_dim) checked rows after `command`, for a controller to run on
    new_chunk: bool  # `command` is the first row taken from another chunk
    state: StepState
    detail: str
    chunk_id: int  # chunk of the commanded target (0 = holding, or an ensemble of several)
    row: int  # its row (-1 when none)
    targeted: bool  # the scheduler gave a target this tick (commanded, or refused by the filter)
    request: StepRequest | None  # a chunk request to send
    warnings: tuple[str, ...] = field(default=())  # first occurrences, to log once

    @property
    def fresh(self) -> bool:
        """A safe target from a chunk is commanded (not the hold position)."""
        return self.command is not None and self.state is StepState.RUNNING

    @property
    def holding(self) -> bool:
        """The hold position is sent (no safe target this tick, while commanding)."""
        return self.command is not None and self.state is not StepState.RUNNING


class ControlStep:
    """The executor's tick-by-tick state: scheduler, safety filter, watchdog, last command.
    Not thread-safe: the caller serialises calls (the node under its lock)."""

    def __init__(self, spec: EmbodimentSpec, decoder: ChunkDecoder, settings: ExecutionSettings) -> None:
        self.spec, self.decoder, self.settings = spec, decoder, settings
        self.dt = settings.control_period(spec)
        self.scheduler = ChunkScheduler(settings.scheduler_config(spec.chunk_size))
        self.safety = settings.safety_filter(spec, decoder.kinematics, self.dt)
        self.watchdog = Watchdog({"joint_states": settings.joint_state_timeout, "chunks": settings.chunk_timeout})
        self.counts: Counter[str] = Counter()  # commands, starved_ticks, stop and holds by watchdog
        self.measured: np.ndarray | None = None
        self.state, self.detail = StepState.WAITING, "waiting for joint states"
        self._tick = -1  # the last tick run; the first is 0
        self._last_command: np.ndarray | None = None
        self._hold: np.ndarray | None = None
        self._commanding = False
        self._idle = False  # the policy said it has no instruction; cleared by the next chunk
        self._stopped = False
        self._last_chunk_id = 0

    # ---- inputs ------------------------------------------------------------------------------
    def observe_joints(self, joints: np.ndarray, now: float) -> None:
        self.measured = joints
        self.watchdog.feed("joint_states", now)

    def chunk_targets(self, request: StepRequest, actions: np.ndarray, start: ChunkStart) -> JointTargets:
        """The answer's rows as joint targets (IK seeded as `request` says); callable off the tick."""
        seed = request.ik_seed if request.ik_seed is not None else start.joints
        return self.decoder.joint_targets(actions, start, seed)

    def on_chunk(self, request: StepRequest, chunk_id: int, targets: np.ndarray, now: float) -> bool:
        """Hand the answer to `request` to the scheduler; False (and nothing changes) when the
        request is no longer outstanding (stopped, timed out or refused meanwhile: the answer is stale)."""
        if not self._outstanding(request):
            return False
        self.scheduler.on_chunk(request.chunk.request_id, chunk_id, targets, self._tick)
        self._idle = False
        self.watchdog.feed("chunks", now)
        return True

    def cancel(self, request: StepRequest) -> bool:
        """Forget `request` if it is still outstanding (refused, failed); the scheduler asks again."""
        if not self._outstanding(request):
            return False
        self.scheduler.cancel_pending()
        return True

    def go_idle(self, request: StepRequest) -> bool:
        """The policy answered `request` with "no instruction": drop the chunk, stop commanding and
        forget the last command, so the next goal's first target is checked against the joints
        measured then. False for an answer to an older request (a newer one may serve a new goal)."""
        if not self._outstanding(request):
            return False
        self.scheduler.reset()
        self._commanding, self._idle, self._last_command, self._hold = False, True, None, None
        return True

    def stop(self) -> None:
        self._stopped = True
        self.scheduler.reset()
        self._hold = self._hold_position()
        self.counts["stop"] += 1

    def resume(self) -> bool:
        """Move again with the next fresh chunk; whether it was stopped."""
        was_stopped, self._stopped = self._stopped, False
        self.scheduler.reset()
        return was_stopped

    @property
    def commanding(self) -> bool:
        return self._commanding

    @property
    def pending(self) -> ChunkRequest | None:
        return self.scheduler.pending

    def counters(self) -> dict[str, int]:
        """Every count of the step: the safety filter's causes and the step's own."""
        return {**self.safety.counts, **self.counts}

    @property
    def holds(self) -> int:
        """Interventions: the filter's refusals and clamps, watchdog holds and stops."""
        return sum(v for k, v in self.counters().items() if k not in ("commands", "starved_ticks"))

    # ---- the tick ----------------------------------------------------------------------------
    def tick(self, now: float) -> StepOutcome:
        self._tick += 1
        decision = None if self._stopped else self.scheduler.tick(self._tick)
        request = None
        if decision is not None and decision.request is not None:
            request = StepRequest(decision.request, None if self.measured is None else self.measured.copy())
        warnings: list[str] = []
        command, new_chunk = self._choose_command(decision, now, warnings)
        lookahead = np.zeros((0, self.spec.state_dim))
        if new_chunk and command is not None:  # a controller runs these if the executor goes silent
            upcoming = self.scheduler.upcoming(self._tick)
            if len(upcoming):
                lookahead = self.safety.admissible_rows(upcoming, command, self.decoder.end_effector_positions)
        fresh = command is not None and self.state is StepState.RUNNING
        return StepOutcome(command, lookahead, new_chunk, self.state, self.detail,
                           decision.chunk_id if fresh else 0, decision.row if fresh else -1,
                           decision is not None and decision.target is not None, request, tuple(warnings))

    def _outstanding(self, request: StepRequest) -> bool:
        pending = self.scheduler.pending
        return pending is not None and pending.request_id == request.chunk.request_id

    def _hold_position(self) -> np.ndarray | None:
        if self._hold is not None:
            return self._hold
        return self._last_command if self._last_command is not None else self.measured

    def _enter_hold(self, state: StepState, detail: str, cause: str | None, warnings: list[str]) -> np.ndarray | None:
        if cause is not None and self.state is not state:  # count each entry into the hold, not every tick
            self.counts[cause] += 1
            if self.counts[cause] == 1:
                warnings.append(f"holding: {detail}")
        self.state, self.detail = state, detail
        self._hold = self._hold_position()
        return self._hold if self._commanding else None

    def _choose_command(self, decision: TickDecision | None, now: float,
                        warnings: list[str]) -> tuple[np.ndarray | None, bool]:
        """The command of this tick (None = send nothing) and whether a new chunk starts."""
        if self._stopped or decision is None:
            return self._enter_hold(StepState.STOPPED, "stopped: resume needs a fresh chunk", None, warnings), False
        quiet = [s for s in self.watchdog.expired(now) if s.startswith("joint_states")]
        if quiet:
            return self._enter_hold(StepState.HOLDING, f"no joint states: {quiet[0]}", "watchdog:joint_states",
                                    warnings), False
        if self.measured is None:
            return None, False
        if decision.target is None:
            waiting_since_chunk = [s for s in self.watchdog.expired(now) if s.startswith("chunks")]
            if self._commanding and self.settings.mode is ExecutionMode.ASYNC:
                self.counts["starved_ticks"] += 1
            if self._commanding and waiting_since_chunk:
                return self._enter_hold(StepState.HOLDING, f"no chunk: {waiting_since_chunk[0]}", "watchdog:chunks",
                                        warnings), False
            if self._idle:  # nothing to hold: the robot's controller keeps the last command
                self.state, self.detail = StepState.IDLE, "idle: the policy has no instruction"
                return None, False
            return self._enter_hold(StepState.WAITING, "waiting for a chunk", None, warnings), False
        previous = self._last_command if self._last_command is not None else self.measured
        positions = (self.decoder.end_effector_positions(decision.target)
                     if self.safety.workspace is not None and np.all(np.isfinite(decision.target)) else None)
        verdict = self.safety.check(decision.target, previous, positions)
        warnings.extend(f"safety: {cause} at chunk {decision.chunk_id} row {decision.row}; further occurrences "
                        "are counted in the status" for cause in verdict.first_occurrences)
        if verdict.command is None:
            return self._enter_hold(StepState.HOLDING, f"target refused: {', '.join(verdict.causes)}", None,
                                    warnings), False
        new_chunk = decision.chunk_id != self._last_chunk_id
        self._last_chunk_id = decision.chunk_id
        self._commanding, self._hold = True, None
        self._last_command = verdict.command
        self.counts["commands"] += 1
        self.state, self.detail = StepState.RUNNING, f"executing chunk {decision.chunk_id}"
        return verdict.command, new_chunk

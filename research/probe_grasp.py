"""Where does a pick fail: reaching, closing, or lifting? Per-episode grasp anatomy of a
checkpoint in the closed loop (`vla eval`'s own `ClosedLoop`), beside the scripted oracle on the
same seed (issue 32 item 4: the layers under perception).

For each episode it reports the moment the gripper command first crosses the middle of its range
("close"), where the tool was then relative to the named cube (horizontal distance against the
jaw offset the script grasps at, height above the cube's centre, the tool frame's x axis's angle
off the nearest face normal: the SO-101's jaw axis), the gripper's measured angle when it stopped moving (touching the cube, or
past it: an empty grasp), how often the command re-opened, how high the cube went, and how many
chunks' gripper rows flicker (switch more than once within one chunk).

    python -m research.probe_grasp --checkpoint DIR --embodiment so101 --seeds FIRST:STOP --latency 0.04

(--seeds: a range of the selection seeds, `vla_core.seeds.SELECTION`; the default is its first ten.)
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vla_core.embodiment import load_embodiment
from vla_core.evaluation.closed_loop import ClosedLoop
from vla_core.evaluation.environments import sim_task
from vla_core.evaluation.policies import CheckpointPolicy, ScriptedOracle
from vla_core.runtime.control_step import ExecutionSettings, StepOutcome
from vla_core.runtime.scheduling import ExecutionMode
from vla_core.seeds import SELECTION
from vla_core.sim.factory import make_teleop


@dataclass
class GraspTrace:
    """Per control tick: the tool frame (position, jaw axis), the named cube's pose, the gripper."""

    tool: list[np.ndarray] = field(default_factory=list)
    jaw_axis: list[np.ndarray] = field(default_factory=list)
    cube: list[np.ndarray] = field(default_factory=list)  # x, y, z, yaw
    gripper_command: list[float] = field(default_factory=list)  # NaN while holding
    gripper_measured: list[float] = field(default_factory=list)


class RecordingLoop(ClosedLoop):
    """The evaluator's closed loop, also recording the grasp's geometry at every tick."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.teleop = make_teleop(self.spec, tremor=0.0)
        self.grasp = GraspTrace()

    def run(self, seed: int, *args, **kwargs):
        self.grasp = GraspTrace()
        return super().run(seed, *args, **kwargs)

    def _record(self, trace, outcome: StepOutcome, now: float, measured: np.ndarray) -> None:
        super()._record(trace, outcome, now, measured)
        cube = self.scene.cube_pose(self.policy.colour)  # the ColourTap's
        number = self.teleop.arm_for(cube[:3])  # the arm the scripted teleoperator picks with
        arm = self.spec.arms[number]
        self.policy.arm = number
        pose = self.teleop.kinematics.forward(measured)[number]
        self.grasp.tool.append(self.teleop.tool_position(number, measured))
        self.grasp.jaw_axis.append(pose[:3, 0])
        self.grasp.cube.append(cube)
        index = self.spec.joint_names.index(arm.gripper_joint)
        command = outcome.command[index] if outcome.fresh and outcome.command is not None else math.nan
        self.grasp.gripper_command.append(float(command))
        self.grasp.gripper_measured.append(float(measured[index]))


class ColourTap:
    """Wraps a policy to learn the episode's named colour (the probe needs the cube; the policy
    interface passes the task at start_episode) and to keep each chunk's gripper channel."""

    def __init__(self, inner, gripper_channels: tuple[int, ...]) -> None:
        self.inner, self.colour = inner, ""
        self.gripper_channels = gripper_channels  # per arm, its chunk channel
        self.arm = 0  # the arm picking, as RecordingLoop last saw it
        self.gripper_rows: list[np.ndarray] = []

    def start_episode(self, scene, task, seed) -> None:
        self.colour, self.gripper_rows = task.colour, []
        self.inner.start_episode(scene, task, seed)

    def predict_chunk(self, *args, **kwargs):
        predicted = self.inner.predict_chunk(*args, **kwargs)
        self.gripper_rows.append(np.asarray(predicted.actions)[:, self.gripper_channels[self.arm]])
        return predicted


@dataclass
class Anatomy:
    seed: int
    success: bool
    closest: float  # m, tool to cube centre
    close_time: float | None  # s, first gripper command past the middle of its range
    horizontal: float | None  # m, tool to cube centre in the table plane at close
    height: float | None  # m, tool above the cube centre at close
    face_angle: float | None  # rad, jaw axis off the nearest face normal at close
    gripper_settled: float | None  # rad, measured gripper 0.5 s after close
    reopenings: int  # command crossings back to open after the first close
    cube_rise: float  # m, highest cube centre above its start
    flickering_chunks: int  # chunks whose gripper rows (0 open, 1 closed at 0.5) switch more than once
    chunks: int


def switches(gripper_rows: np.ndarray) -> int:
    """How often a chunk's decoded gripper changes between consecutive rows."""
    closed = np.asarray(gripper_rows) > 0.5
    return int(np.sum(closed[1:] != closed[:-1]))


def anatomy(seed: int, success: bool, closest: float, grasp: GraspTrace, gripper_rows: list[np.ndarray],
            rate: float, open_: float, closed: float) -> Anatomy:
    flickering = sum(switches(rows) > 1 for rows in gripper_rows)
    command = np.array(grasp.gripper_command)
    middle = 0.5 * (open_ + closed)
    shut = np.where(np.isfinite(command), command < middle, False)
    cube = np.array(grasp.cube)
    rise = float(cube[:, 2].max() - cube[0, 2])
    if not shut.any():
        return Anatomy(seed, success, closest, None, None, None, None, None, 0, rise, flickering, len(gripper_rows))
    first = int(np.argmax(shut))
    tool, axis = grasp.tool[first], grasp.jaw_axis[first]
    offset = tool - cube[first, :3]
    face = (math.atan2(axis[1], axis[0]) - cube[first, 3]) % (math.pi / 2)
    face = min(face, math.pi / 2 - face)
    later = np.where(np.isfinite(command[first:]), command[first:] < middle, True)
    reopen = int(np.sum(later[:-1] & ~later[1:]))
    settle = min(first + int(0.5 * rate), len(grasp.gripper_measured) - 1)
    return Anatomy(seed, success, closest, first / rate, float(np.hypot(*offset[:2])), float(offset[2]), face,
                   grasp.gripper_measured[settle], reopen, rise, flickering, len(gripper_rows))


def run(policy, embodiment: str, seeds: range, mode: str, latency: float | None) -> list[Anatomy]:
    spec = load_embodiment(embodiment)
    tap = ColourTap(policy, spec.gripper_channels)
    loop = RecordingLoop(sim_task(embodiment, "pick_cube"), spec, tap,
                         ExecutionSettings(mode=ExecutionMode(mode)), latency=latency)
    results = []
    try:
        for seed in seeds:
            result = loop.run(seed)
            opened, closed = loop.teleop.kinematics.gripper_positions(spec.arms[tap.arm])
            results.append(anatomy(seed, result.success, result.closest_approach, loop.grasp, tap.gripper_rows,
                                   loop.rate, opened, closed))
    finally:
        loop.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--embodiment", default="so101")
    parser.add_argument("--seeds", default=f"{SELECTION.start}:{SELECTION.start + 10}")
    parser.add_argument("--mode", default="sync")
    parser.add_argument("--latency", type=float, default=0.04)
    parser.add_argument("--oracle", action="store_true", help="also the scripted oracle on the same seeds")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    start, stop = (int(x) for x in args.seeds.split(":"))
    rows = {"policy": run(CheckpointPolicy.load(args.checkpoint, [args.embodiment]), args.embodiment,
                          range(start, stop), args.mode, args.latency)}
    if args.oracle:
        rows["oracle"] = run(ScriptedOracle(load_embodiment(args.embodiment)), args.embodiment, range(start, stop),
                             args.mode, args.latency)
    for name, anatomies in rows.items():
        print(f"== {name}")
        for a in anatomies:
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(a).items()}))
    if args.output:
        args.output.write_text(json.dumps({k: [asdict(a) for a in v] for k, v in rows.items()}, indent=1))


if __name__ == "__main__":
    main()

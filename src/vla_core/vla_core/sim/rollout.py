"""Run a scripted teleoperator in a scene without ROS: the frames a demonstration is made of.

At each control tick the measured joints are the state, the teleoperator's command is the
action, and the cameras are rendered; the command is then followed for one control period
the way the simulation node's joint trajectory controller does (a single-point trajectory
reached at the next tick, interpolated at every physics step).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vla_core.sim.scene import TabletopScene
from vla_core.sim.tasks import CubeTask
from vla_core.sim.teleop import ScriptedTeleop, TeleopTrajectory
from vla_core.sim.trajectory_follower import TrajectoryFollower


@dataclass
class Rollout:
    """T frames at the teleoperator's rate; images only for the cameras asked for."""

    timestamps: np.ndarray  # (T,) seconds from the first frame
    state: np.ndarray  # (T, J) measured joints
    action: np.ndarray  # (T, J) commanded joints
    success: bool
    images: dict[str, np.ndarray] = field(default_factory=dict)  # camera -> (T, H, W, 3) uint8


def plan_task(scene: TabletopScene, task: CubeTask, teleop: ScriptedTeleop,
              rng: np.random.Generator) -> TeleopTrajectory:
    """The teleoperator's plan for `task` from the scene as it is now: the arm where it stands,
    the named cube where it lies (wherever a reset or an earlier controller left them)."""
    place_at = scene.bin_position if task.needs_bin else None
    return teleop.plan(scene.joint_positions(), scene.cube(task.colour).position, scene.cube_yaw(task.colour),
                       rng, place_at=place_at)


def run_scripted_episode(scene: TabletopScene, task: CubeTask, teleop: ScriptedTeleop, seed: int,
                         cameras: tuple[str, ...] = ()) -> Rollout:
    """Reset the scene to `seed`, plan the task with a generator seeded by `seed`, and play it."""
    scene.reset(seed)
    return play_plan(scene, task, plan_task(scene, task, teleop, np.random.default_rng(seed)), teleop.rate_hz, cameras)


def play_plan(scene: TabletopScene, task: CubeTask, plan: TeleopTrajectory, rate_hz: float,
              cameras: tuple[str, ...] = ()) -> Rollout:
    """Play `plan` from the scene's current state, recording a frame per tick; judge `task` at the end."""
    period = 1.0 / rate_hz
    follower = TrajectoryFollower(scene.joint_positions())
    states, frames = [], {camera: [] for camera in cameras}
    start = scene.time
    for tick, command in enumerate(plan.joints):
        states.append(scene.joint_positions())
        for camera in cameras:
            frames[camera].append(scene.render(camera))
        follower.replace(scene.time, np.array([period]), command[None], scene.time)
        end = start + (tick + 1) * period
        while scene.time < end - 0.5 * scene.timestep:
            scene.command(follower.target(scene.time))
            scene.step(scene.timestep)
    return Rollout(timestamps=plan.times.copy(), state=np.array(states), action=plan.joints.copy(),
                   success=task.success(scene), images={camera: np.stack(frames[camera]) for camera in cameras})

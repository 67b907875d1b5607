"""Which simulated scene and task an (embodiment, task) pair is evaluated in.

The evaluator only needs what a robot driver would offer (joint positions, position commands,
cameras, time) plus the task's success test, so every scene with the PickCubeScene interface
plugs in: `sim_task` builds the definition from the simulation's own factory and task table.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class PlacedObject(Protocol):
    """An object of the scene as the evaluator reads it."""

    @property
    def position(self) -> np.ndarray: ...  # (3,) m, in the robot's base frame


class SimScene(Protocol):
    """A MuJoCo scene as the evaluator drives it (`vla_core.sim.pick_scene.PickCubeScene`)."""

    @property
    def time(self) -> float: ...

    @property
    def timestep(self) -> float: ...

    def reset(self, seed: int) -> None: ...

    def joint_positions(self) -> np.ndarray: ...

    def command(self, targets: np.ndarray) -> None: ...

    def step(self, seconds: float) -> None: ...

    def render(self, camera: str) -> np.ndarray: ...

    def cube(self, colour: str) -> PlacedObject: ...

    def cube_pose(self, colour: str) -> np.ndarray: ...  # (x, y, z, yaw): a privileged-state diagnostic's input

    def close(self) -> None: ...


class EpisodeTask(Protocol):
    """One episode's task: its name, the cube it names and the sentence it is asked with."""

    name: str
    colour: str

    def instruction(self, wording: str = "training", seed: int = 0) -> str: ...


@dataclass(frozen=True)
class SimTaskDefinition:
    """How to build, draw and judge one task on one embodiment."""

    embodiment: str
    task: str
    time_limit: float  # simulated seconds before an episode counts as failed
    make_scene: Callable[[int], SimScene]  # image size (pixels, square) -> scene
    draw_task: Callable[[int, SimScene], EpisodeTask]  # seed, freshly reset scene -> task
    succeeded: Callable[[SimScene, EpisodeTask], bool]
    # metres from the task's named cube to the nearest arm's tool (where the jaws close), now: a
    # failed episode that came within a jaw's width failed its grasp, not its reach
    tool_distance: Callable[[SimScene, EpisodeTask], float]



# Simulated seconds before an episode counts as failed: the scripted teleoperator needs about
# 5-7 s for a pick and twice that for a pick-and-place, which leaves a policy room to retry.
TIME_LIMITS: dict[str, float] = {"pick_cube": 15.0, "cube_in_bin": 25.0}


def sim_task(embodiment: str, task: str) -> SimTaskDefinition:
    """The definition for a pair the simulation has (`vla_core.sim.factory`), or an error naming them."""
    from vla_core.embodiment import load_embodiment
    from vla_core.sim.factory import SIMULATED_EMBODIMENTS, make_scene, make_teleop
    from vla_core.sim.tasks import TASKS, sample_task

    if embodiment not in SIMULATED_EMBODIMENTS or task not in TASKS:
        known = ", ".join(f"{e}/{t}" for e in SIMULATED_EMBODIMENTS for t in TASKS)
        raise ValueError(f"no simulated task {task!r} for embodiment {embodiment!r}; available: {known}")
    teleop = make_teleop(load_embodiment(embodiment), tremor=0.0)  # it knows where each arm's jaws close

    def tool_distance(scene: SimScene, drawn: EpisodeTask) -> float:
        joints, cube = scene.joint_positions(), scene.cube(drawn.colour).position
        return min(float(np.linalg.norm(teleop.tool_position(arm, joints) - cube))
                   for arm in range(len(teleop.kinematics.spec.arms)))

    return SimTaskDefinition(embodiment, task, TIME_LIMITS.get(task, 20.0),
                             lambda size: make_scene(embodiment, task, size),
                             lambda seed, scene: sample_task(task, seed, scene.colours),
                             lambda scene, drawn: drawn.success(scene), tool_distance)

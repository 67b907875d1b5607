"""Which simulated scene and task an (embodiment, task) pair is evaluated in.

The evaluator only needs what a robot driver would offer (joint positions, position commands,
cameras, time) plus the task's success test, so every scene with the PickCubeScene interface
plugs in through one `SimTaskDefinition` entry in `SIM_TASKS`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np


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

    def close(self) -> None: ...


class EpisodeTask(Protocol):
    """One episode's task: its name and the sentence it is asked with."""

    name: str

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


def _pick_scene(image_size: int) -> SimScene:
    from vla_core.sim.pick_scene import PickCubeScene

    return PickCubeScene(image_size=image_size)


def _draw_pick_task(seed: int, scene: SimScene) -> EpisodeTask:
    from vla_core.sim.tasks import sample_pick_task

    return sample_pick_task(seed, scene.colours)


def _cube_lifted(scene: SimScene, task: EpisodeTask) -> bool:
    return scene.lifted(task.colour)


# The scripted teleoperator needs about 5-7 s for a pick; 15 s leaves a policy room to retry.
SIM_TASKS: dict[tuple[str, str], SimTaskDefinition] = {
    ("so101", "pick_cube"): SimTaskDefinition("so101", "pick_cube", 15.0, _pick_scene, _draw_pick_task, _cube_lifted),
}


def sim_task(embodiment: str, task: str) -> SimTaskDefinition:
    """The definition for a pair, or an error listing the pairs that have one."""
    try:
        return SIM_TASKS[(embodiment, task)]
    except KeyError:
        known = ", ".join(f"{e}/{t}" for e, t in sorted(SIM_TASKS))
        raise ValueError(f"no simulated task {task!r} for embodiment {embodiment!r}; available: {known}") from None

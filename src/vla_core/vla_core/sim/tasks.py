"""Language tasks on the tabletop scenes: which cube, in which words, and whether it was done.

Every task has one training wording (what demonstrations are recorded with) and held-out
paraphrases that no demonstration uses, so an evaluation can tell a policy that follows
language from one that memorised a sentence.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

if TYPE_CHECKING:
    from vla_core.sim.scene import TabletopScene

TRAINING_WORDING = "pick up the {colour} cube"
HELD_OUT_WORDINGS = ("grab the {colour} block", "lift the {colour} cube off the table", "raise the {colour} box")
BIN_TRAINING_WORDING = "put the {colour} cube in the bin"
BIN_HELD_OUT_WORDINGS = ("place the {colour} block into the bin", "drop the {colour} cube in the tray",
                         "move the {colour} box into the container")
Wording = Literal["training", "held_out"]


@dataclass(frozen=True)
class CubeTask(ABC):
    """A task about the cube of one colour; subclasses give the words and the success test."""

    colour: str
    name: ClassVar[str]
    training_wording: ClassVar[str]
    held_out_wordings: ClassVar[tuple[str, ...]]
    needs_bin: ClassVar[bool] = False

    def instruction(self, wording: Wording = "training", seed: int = 0) -> str:
        """The training sentence, or one of the held-out paraphrases (chosen by `seed`)."""
        if wording == "training":
            return self.training_wording.format(colour=self.colour)
        if wording == "held_out":
            return self.held_out_wordings[seed % len(self.held_out_wordings)].format(colour=self.colour)
        raise ValueError(f"wording must be 'training' or 'held_out', got {wording!r}")

    @abstractmethod
    def success(self, scene: TabletopScene) -> bool:
        """The task's goal holds in the scene now."""


@dataclass(frozen=True)
class PickTask(CubeTask):
    """Pick up the cube of one colour (success: it is held 5 cm above the table)."""

    name: ClassVar[str] = "pick_cube"
    training_wording: ClassVar[str] = TRAINING_WORDING
    held_out_wordings: ClassVar[tuple[str, ...]] = HELD_OUT_WORDINGS

    def success(self, scene: TabletopScene) -> bool:
        return scene.lifted(self.colour)


@dataclass(frozen=True)
class BinTask(CubeTask):
    """Put the cube of one colour in the bin (success: it rests on the table inside the bin)."""

    name: ClassVar[str] = "cube_in_bin"
    training_wording: ClassVar[str] = BIN_TRAINING_WORDING
    held_out_wordings: ClassVar[tuple[str, ...]] = BIN_HELD_OUT_WORDINGS
    needs_bin: ClassVar[bool] = True

    def success(self, scene: TabletopScene) -> bool:
        return scene.in_bin(self.colour)


TASKS: dict[str, type[CubeTask]] = {task.name: task for task in (PickTask, BinTask)}


def sample_task(name: str, seed: int, colours: tuple[str, ...]) -> CubeTask:
    """The task of an episode: the same seed always asks for the same colour."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")
    if not colours:
        raise ValueError("the scene has no cubes")
    return TASKS[name](colours[int(np.random.default_rng([seed, 1]).integers(len(colours)))])


def sample_pick_task(seed: int, colours: tuple[str, ...]) -> PickTask:
    """The pick_cube task of an episode (see `sample_task`)."""
    return sample_task(PickTask.name, seed, colours)

"""Language tasks on the pick scene: which cube, in which words, and whether it was done.

Every task has one training wording (what demonstrations are recorded with) and held-out
paraphrases that no demonstration uses, so an evaluation can tell a policy that follows
language from one that memorised a sentence.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

TRAINING_WORDING = "pick up the {colour} cube"
HELD_OUT_WORDINGS = ("grab the {colour} block", "lift the {colour} cube off the table", "raise the {colour} box")
Wording = Literal["training", "held_out"]


@dataclass(frozen=True)
class PickTask:
    """Pick up the cube of one colour (success: it is held 5 cm above the table)."""

    colour: str
    name: str = "pick_cube"

    def instruction(self, wording: Wording = "training", seed: int = 0) -> str:
        """The training sentence, or one of the held-out paraphrases (chosen by `seed`)."""
        if wording == "training":
            return TRAINING_WORDING.format(colour=self.colour)
        if wording == "held_out":
            return HELD_OUT_WORDINGS[seed % len(HELD_OUT_WORDINGS)].format(colour=self.colour)
        raise ValueError(f"wording must be 'training' or 'held_out', got {wording!r}")


def sample_pick_task(seed: int, colours: tuple[str, ...]) -> PickTask:
    """The task of an episode: the same seed always asks for the same colour."""
    if not colours:
        raise ValueError("the scene has no cubes to pick")
    return PickTask(colours[int(np.random.default_rng([seed, 1]).integers(len(colours)))])

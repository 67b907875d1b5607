"""Recovery demonstrations: the policy drives, then the scripted teleoperator takes over.

Scripted demonstrations never fail, so a policy trained on them has never seen the states its
own mistakes lead to: a grasp closed beside the cube, a cube pushed out of place, an arm that
wandered off. DAgger (Ross, Gordon and Bagnell, 2011) trains on the states the policy visits,
labelled by the expert; this is its takeover form (as in HG-DAgger, Kelly et al., 2019): the
checkpoint runs in closed loop, exactly as `vla eval` runs it, until a handover time drawn per
episode; then the teleoperator plans from wherever the arm and the cube are and finishes the
task, and its part is the demonstration. The handover time is spread over the episode so the
demonstrations start from every phase the policy goes through.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # `vla collect` builds its parser with HandoverWindow: no policy or MuJoCo import for that
    from vla_core.evaluation.closed_loop import ClosedLoop
    from vla_core.sim.rollout import Rollout
    from vla_core.sim.teleop import ScriptedTeleop


@dataclass(frozen=True)
class HandoverWindow:
    """Simulated seconds after the reset within which the teleoperator takes over, drawn uniformly."""

    earliest: float
    latest: float

    def __post_init__(self) -> None:
        if not 0 < self.earliest <= self.latest:
            raise ValueError(f"a handover window needs 0 < earliest <= latest seconds, "
                             f"got {self.earliest}, {self.latest}")

    def draw(self, seed: int) -> float:
        """The episode's handover time, reproducible by seed and independent of the scene's draws."""
        return float(np.random.default_rng([seed, 7]).uniform(self.earliest, self.latest))


def run_recovery_episode(loop: ClosedLoop, teleop: ScriptedTeleop, seed: int, handover: float,
                         cameras: tuple[str, ...]) -> Rollout | None:
    """Reset to `seed`, let `loop`'s policy drive for `handover` s (training wording), then play
    the teleoperator's plan from there, recording `cameras`: the frames to record, or None when
    the policy had already done the task (nothing to recover from). Raises UnreachableCube when
    the policy left the cube where no grasp reaches it."""
    from vla_core.sim.rollout import plan_task, play_plan

    if loop.run(seed, "training", time_limit=handover).success:
        return None
    scene = loop.scene
    task = loop.definition.draw_task(seed, scene)  # the task the loop drew: a function of the seed alone
    plan = plan_task(scene, task, teleop, np.random.default_rng([seed, 11]))
    return play_plan(scene, task, plan, teleop.rate_hz, cameras)

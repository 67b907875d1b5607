"""A grid of evaluation cells (embodiment x task x wording x mode), with progress and reports.

Every cell of one (embodiment, task) runs the same seeds (`seed_base`, `seed_base + 1`, ...),
so cells differ only in wording or execution mode: the comparison is paired.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from vla_core.embodiment import load_embodiment
from vla_core.evaluation import EVAL_SEED_BASE
from vla_core.evaluation.closed_loop import ClosedLoop, EpisodeResult
from vla_core.runtime.control_step import ExecutionSettings
from vla_core.evaluation.environments import sim_task
from vla_core.evaluation.policies import PolicyUnderTest
from vla_core.evaluation.report import (
    markdown_table,
    plot_joint_tracking,
    plot_success_rates,
    write_image_strip,
    write_json,
)
from vla_core.evaluation.summary import CellKey, CellSummary, summarise
from vla_core.runtime.scheduling import ExecutionMode

WORDINGS = ("training", "held_out")


@dataclass(frozen=True)
class EvaluationPlan:
    embodiments: Sequence[str]
    tasks: Sequence[str]
    wordings: Sequence[str]
    modes: Sequence[str]
    episodes: int
    seed_base: int = EVAL_SEED_BASE
    time_limit: float | None = None  # None = each task's own limit
    latency: float | None = None  # None = measured per chunk
    pictures: bool = False  # image strip and joint plot of each cell's first episode

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        bad = [w for w in self.wordings if w not in WORDINGS]
        if bad or not self.wordings:
            raise ValueError(f"wordings must be some of {list(WORDINGS)}, got {list(self.wordings)}")
        modes = [m.value for m in ExecutionMode]
        if not self.modes or any(m not in modes for m in self.modes):
            raise ValueError(f"modes must be some of {modes}, got {list(self.modes)}")
        for embodiment in self.embodiments:
            for task in self.tasks:
                sim_task(embodiment, task)  # raises naming the pairs that exist


def _episode_json(result: EpisodeResult) -> dict:
    return {"seed": result.seed, "instruction": result.instruction, "success": result.success,
            "time_to_success": result.time_to_success, "duration": result.duration,
            "wall_seconds": round(result.wall_seconds, 3), "chunks": len(result.latencies),
            "latency_median": float(np.median(result.latencies)) if result.latencies else None,
            "starved_ticks": result.starved_ticks, "held_ticks": result.held_ticks,
            "target_ticks": result.target_ticks, "refused_ticks": result.refused_ticks,
            "safety_counts": result.safety_counts, "closest_approach": round(result.closest_approach, 4)}


def _pictures(result: EpisodeResult, key: CellKey, joint_names: Sequence[str], output: Path) -> None:
    name = key.label.replace("/", "_")
    if result.trace.frames:
        write_image_strip(result.trace.frames, output / f"strip_{name}.png")
    trace = result.trace
    plot_joint_tracking(np.array(trace.times), np.array(trace.commands), np.array(trace.measured), joint_names,
                        output / f"joints_{name}.png", f"{key.label}, seed {result.seed}: {result.instruction!r}")


def evaluate(plan: EvaluationPlan, policy_for: Callable[[str], PolicyUnderTest], base_settings: ExecutionSettings,
             output: Path, description: str, progress: Callable[[str], None] = print) -> list[CellSummary]:
    """Run every cell, print a line per episode, write results.md/json and the PNGs into `output`.

    `policy_for(embodiment)` gives the policy to evaluate on that embodiment.
    """
    output.mkdir(parents=True, exist_ok=True)
    summaries: list[CellSummary] = []
    episodes: dict[str, list[dict]] = {}
    cells = [(e, t, w, m) for e in plan.embodiments for t in plan.tasks for w in plan.wordings for m in plan.modes]
    done = 0
    for embodiment in plan.embodiments:
        spec = load_embodiment(embodiment)
        policy = policy_for(embodiment)
        for task in plan.tasks:
            definition = sim_task(embodiment, task)
            scene = None
            for wording in plan.wordings:
                for mode in plan.modes:
                    settings = replace(base_settings, mode=ExecutionMode(mode))
                    loop = ClosedLoop(definition, spec, policy, settings, scene=scene, latency=plan.latency)
                    scene = loop.scene  # one scene (and renderer) for every cell of this task
                    key = CellKey(embodiment, task, wording, mode)
                    done += 1
                    results = []
                    for index in range(plan.episodes):
                        seed = plan.seed_base + index
                        result = loop.run(seed, wording, plan.time_limit, keep_frames=plan.pictures and index == 0)
                        results.append(result)
                        outcome = f"success at {result.time_to_success:.1f} s" if result.success else "failed"
                        latency = np.median(result.latencies) * 1e3 if result.latencies else float("nan")
                        progress(f"[cell {done}/{len(cells)} {key.label}] episode {index + 1}/{plan.episodes} "
                                 f"seed {seed}: {outcome} ({result.duration:.1f} s simulated, "
                                 f"{result.wall_seconds:.1f} s wall, chunk latency {latency:.0f} ms) "
                                 f"{result.instruction!r}")
                        if plan.pictures and index == 0:
                            _pictures(result, key, spec.joint_names, output)
                    summary = summarise(key, results)
                    summaries.append(summary)
                    episodes[key.label] = [_episode_json(r) for r in results]
                    progress(f"  {key.label}: {summary.successes}/{summary.episodes} "
                             f"({summary.wilson_low:.0%} - {summary.wilson_high:.0%})")
            if scene is not None:
                scene.close()
    settings = {"description": description, **{k: v for k, v in asdict(plan).items()},
                "execution": {**asdict(base_settings), "mode": list(plan.modes)}}
    write_json(output / "results.json", summaries, settings, episodes)
    seeds = f"seeds {plan.seed_base}..{plan.seed_base + plan.episodes - 1}"
    latency = "measured per chunk" if plan.latency is None else f"fixed at {plan.latency * 1e3:.0f} ms"
    (output / "results.md").write_text(f"# Closed-loop evaluation: {description}\n\n{plan.episodes} episodes per "
                                       f"cell, {seeds}; chunk latency {latency}.\n\n" + markdown_table(summaries))
    plot_success_rates(summaries, output / "success_rate.png", description)
    return summaries

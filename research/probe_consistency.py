"""Do varied demonstrations make a policy move short? Privileged-state policies (the named cube's
true pose instead of images, issue 32 item 4) trained at equal compute on the same placements
demonstrated by the varied scripted teleoperator (what `vla collect` records) and by the
consistent one (`vla collect --consistent`: one speed, hover height and pause length, no tremor).

The demonstrations are played without cameras (a privileged policy reads none), straight into
`vla_core.training.loop.train`, each episode carrying the metadata `vla collect` writes, so the
training replays them for their poses exactly as it does a collected dataset. Evaluate the two
checkpoints with `vla eval` on the selection seeds.

    python -m research.probe_consistency --embodiment so101 --episodes 140 --steps 1500 --output DIR
"""
from __future__ import annotations

import argparse
from pathlib import Path

from vla_core.data.episode import Episode
from vla_core.embodiment import load_embodiment
from vla_core.seeds import DEMONSTRATIONS
from vla_core.training.config import TrainConfig
from vla_core.training.loop import train


def demonstrations(embodiment: str, count: int, consistent: bool) -> list[Episode]:
    """Successful scripted pick demonstrations of seeds DEMONSTRATIONS.start.. (no frames)."""
    from vla_core.sim.factory import make_scene, make_teleop
    from vla_core.sim.rollout import run_scripted_episode
    from vla_core.sim.tasks import sample_task
    from vla_core.sim.teleop import UnreachableCube

    spec = load_embodiment(embodiment)
    scene, teleop = make_scene(embodiment, "pick_cube", 64), make_teleop(spec, consistent=consistent)
    episodes = []
    try:
        for seed in range(DEMONSTRATIONS.start, DEMONSTRATIONS.start + count):
            task = sample_task("pick_cube", seed, scene.colours)
            try:
                rollout = run_scripted_episode(scene, task, teleop, seed)
            except UnreachableCube:
                continue
            if not rollout.success:
                continue
            metadata = {"seed": seed, "task": "pick_cube", "target": task.colour}
            if consistent:
                metadata["consistent_teleoperator"] = True
            # float32, as a dataset stores them: the replay is checked against these
            episodes.append(Episode(name=f"{embodiment}_seed{seed}", embodiment=embodiment,
                                    task=task.instruction("training"), fps=spec.control_rate_hz,
                                    timestamps=rollout.timestamps, state=rollout.state.astype("float32").astype(float),
                                    action=rollout.action.astype("float32").astype(float), success=True,
                                    metadata=metadata))
    finally:
        scene.close()
    return episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embodiment", default="so101")
    parser.add_argument("--episodes", type=int, default=140)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    for name, consistent in (("varied", False), ("consistent", True)):
        episodes = demonstrations(args.embodiment, args.episodes, consistent)
        lengths = [len(episode) for episode in episodes]
        print(f"{name}: {len(episodes)} demonstrations, {sum(lengths)} frames, "
              f"{min(lengths)}-{max(lengths)} frames each", flush=True)
        config = TrainConfig(datasets=[{"path": args.embodiment}], steps=args.steps, batch_size=args.batch_size,
                             micro_batch_size=args.batch_size, learning_rate=args.learning_rate, warmup_steps=100,
                             held_out_episodes=2, save_every=args.steps, val_every=args.steps, log_every=50,
                             policy={"gripper_bce_weight": 1.0, "privileged_object_pose": True},
                             output_dir=str(args.output / name))
        print(f"{name}: checkpoint {train(config, [episodes])}", flush=True)


if __name__ == "__main__":
    main()

"""Write the model card (README.md) of a checkpoint trained by scripts/train_default_checkpoint.sh.

Everything on the card is read from what the two training stages left behind, so it cannot
drift from the checkpoint: the training configs they used, their metrics and timings
(`train_seconds`, written by the script), the datasets' LeRobot metadata and the evaluation
table that `vla eval` wrote.

    python scripts/write_model_card.py --checkpoint checkpoints/default \
        --base-run outputs/default_checkpoint/run --recovery-run outputs/default_checkpoint/recovery_run \
        --command "make checkpoint"
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import yaml


def _last(metrics: list[dict], key: str) -> dict | None:
    return next((row for row in reversed(metrics) if key in row), None)


def _dataset_rows(datasets: list[dict]) -> list[str]:
    rows = ["| dataset | robot | episodes | frames | fps | weight |", "| --- | --- | --- | --- | --- | --- |"]
    for source in datasets:
        info = json.loads((Path(source["path"]) / "meta" / "info.json").read_text())
        rows.append(f"| `{source['path']}` | {info['robot_type']} | {info['total_episodes']} | "
                    f"{info['total_frames']} | {info['fps']} | {source.get('weight', 1.0)} |")
    return rows


def _read_run(run: Path) -> tuple[dict, list[dict], float]:
    """A `vla train` output directory: its config, its metrics and the seconds the script timed it."""
    config = yaml.safe_load((run / "train_config.yaml").read_text())
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return config, metrics, float((run / "train_seconds").read_text())


def _training_lines(config: dict, metrics: list[dict], seconds: float, policy: dict, embodiments: list[str]) -> list[str]:
    """What one stage trained, how long, and where its losses ended."""
    lines = [(f"{config['steps']} steps of batch {config['batch_size']}, learning rate {config['learning_rate']} "
              f"(warm-up {config['warmup_steps']}, cosine), seed {config['seed']}, in {seconds / 60:.0f} minutes "
              f"on {platform.machine()} with {os.cpu_count()} CPU cores shared with other work.")]
    if config.get("keypoint_placements"):
        keypoints = _last(metrics, "val_keypoint_rms/" + embodiments[0])
        scores = ", ".join(f"{key.split('/')[1]} {value:.3f}" for key, value in (keypoints or {}).items()
                           if key.startswith("val_keypoint_rms/"))
        alone = (f"{config['keypoint_pretrain_steps']} steps alone, then " if config.get("keypoint_pretrain_steps")
                 else "")
        lines.append(f"Keypoint supervision: {policy['main_keypoints']} keypoints; keypoint 0 learns the named cube's "
                     f"image position from {config['keypoint_placements']} rendered views per robot (seeds from "
                     f"{config.get('keypoint_seed', 30000)}), {alone}beside the flow loss; on held-out views it ends "
                     f"{scores} image half-widths (RMS) from the named cube.")
    final, validation = _last(metrics, "loss"), _last(metrics, "val_l1")
    ending = f"Final training loss {final['loss']:.3f} (step {final['step']})" if final else "No training loss logged"
    if validation:
        per_robot = ", ".join(f"{key.split('/')[1]} {value:.3f}" for key, value in validation.items()
                              if key.startswith("val_l1/"))
        ending += (f"; validation L1 of sampled chunks (normalised units) {validation['val_l1']:.3f} at step "
                   f"{validation['step']} ({per_robot})")
    return lines + [ending + "."]


def model_card(checkpoint: Path, base_run: Path, recovery_run: Path, command: str) -> str:
    base_config, base_metrics, base_seconds = _read_run(base_run)
    config, metrics, seconds = _read_run(recovery_run)
    policy = json.loads((checkpoint / "config.json").read_text())["policy"]
    embodiments = sorted(json.loads((checkpoint / "embodiments.json").read_text()))
    recovery_sets = [source for source in config["datasets"]
                     if source["path"] not in {base["path"] for base in base_config["datasets"]}]
    evaluation = checkpoint / "eval" / "results.md"
    lines = [
        "# checkpoints/default: the shipped vla_ros policy",
        "",
        (f"Embodiments (one soft prompt each): {', '.join(embodiments)}. Backbone: `{policy['backbone']}` "
         f"(frozen all-MiniLM-L6-v2 text encoder, referenced by package, not stored). Hidden size "
         f"{policy['hidden_size']}, {policy['depth']} expert blocks, chunks of {policy['horizon']} actions, "
         f"{policy['flow_steps']} Euler steps, main view {policy['image_size']} px, wrist views "
         f"{policy['wrist_image_size']} px."),
        "",
        "## Data",
        "",
        "Scripted teleoperation in this project's MuJoCo simulation (`vla collect`, seeds from 0; evaluation",
        "seeds start at 10000), successful episodes only, training wording of `pick_cube` only:",
        "",
        *_dataset_rows(base_config["datasets"]),
        "",
        "Recovery demonstrations (one round of DAgger in its takeover form, `vla collect --recover-with`, seeds",
        "from 5000): stage 1's policy drove each episode in closed loop for 1-10 simulated seconds, then the",
        "scripted teleoperator finished from wherever it had left the arm and the cube; only its part is",
        "recorded, successful episodes only:",
        "",
        *_dataset_rows(recovery_sets),
        "",
        f"{config['held_out_episodes']} episode(s) per dataset were held out for the validation L1.",
        "",
        "## Training",
        "",
        f"Command: `{command}` (collect, train both stages, evaluate, write this card).",
        "",
        "Stage 1, from scratch on the scripted demonstrations (`config/train/default_checkpoint.yaml`):",
        *_training_lines(base_config, base_metrics, base_seconds, policy, embodiments),
        "Loss curve: `base_loss_curve.png`; every logged step: `base_metrics.jsonl`.",
        "",
        "Stage 2, stage 1 fine-tuned on both kinds of demonstrations (`config/train/default_checkpoint_recovery.yaml`):",
        *_training_lines(config, metrics, seconds, policy, embodiments),
        "Loss curve: `loss_curve.png`; every logged step: `metrics.jsonl`.",
        "",
        "## Closed-loop evaluation",
        "",
    ]
    if evaluation.is_file():
        lines += [evaluation.read_text().strip(), "", "Chart: `eval/success_rate.png`."]
    else:
        lines.append("Not evaluated yet: run `vla eval` (see the README).")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--base-run", type=Path, required=True, help="stage 1's vla train output directory")
    parser.add_argument("--recovery-run", type=Path, required=True, help="stage 2's vla train output directory")
    parser.add_argument("--command", default="make checkpoint")
    args = parser.parse_args()
    (args.checkpoint / "README.md").write_text(model_card(args.checkpoint, args.base_run, args.recovery_run,
                                                          args.command))
    print(f"wrote {args.checkpoint / 'README.md'}")


if __name__ == "__main__":
    main()

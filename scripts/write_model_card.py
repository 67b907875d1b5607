"""Write the model card (README.md) of a checkpoint trained by scripts/train_default_checkpoint.sh.

Everything on the card is read from what the run left behind, so it cannot drift from the
checkpoint: the training config the run used, its metrics, the datasets' LeRobot metadata and
the evaluation table that `vla eval` wrote.

    python scripts/write_model_card.py --checkpoint checkpoints/default \
        --run outputs/default_checkpoint/run --train-seconds 1700 --command "make checkpoint"
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import yaml

from vla_core.seeds import DEMONSTRATIONS, EVALUATION
from vla_core.sim.tasks import HELD_OUT_WORDINGS


def _last(metrics: list[dict], key: str) -> dict | None:
    return next((row for row in reversed(metrics) if key in row), None)


def _dataset_rows(datasets: list[dict]) -> list[str]:
    rows = ["| dataset | robot | episodes | frames | fps | weight |", "| --- | --- | --- | --- | --- | --- |"]
    for source in datasets:
        info = json.loads((Path(source["path"]) / "meta" / "info.json").read_text())
        rows.append(f"| `{source['path']}` | {info['robot_type']} | {info['total_episodes']} | "
                    f"{info['total_frames']} | {info['fps']} | {source.get('weight', 1.0)} |")
    return rows


def _head(policy: dict) -> str:
    if policy.get("head", "flow") == "regression":
        return "regression head (one pass, L1 on the chunk)"
    return f"flow-matching head ({policy['flow_steps']} Euler steps)"


def _stages(config: dict) -> list[str]:
    """How the run treated its encoders: started from another checkpoint's, frozen and cached."""
    lines = []
    if config.get("encoders_from"):
        lines.append(f"The observation encoders (stems, text fusion, keypoints, wrist stream) started from "
                     f"`{config['encoders_from']}`; the expert and its head were new.")
    if config.get("freeze_stems_at", -1) >= 0:
        lines.append(f"From step {config['freeze_stems_at']} the conv stems were frozen and the rest trained on their "
                     "outputs, computed once per frame (`freeze_stems_at`, vla_core.training.feature_cache).")
    return lines


def model_card(checkpoint: Path, run: Path, train_seconds: float, command: str, note: str = "") -> str:
    config = yaml.safe_load((run / "train_config.yaml").read_text())
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    policy = json.loads((checkpoint / "config.json").read_text())["policy"]
    embodiments = json.loads((checkpoint / "embodiments.json").read_text())
    final, validation = _last(metrics, "loss"), _last(metrics, "val_l1")
    evaluation = checkpoint / "eval" / "results.md"
    lines = [
        "# checkpoints/default: the shipped vla_ros policy",
        "",
        (f"Embodiments (one soft prompt each): {', '.join(sorted(embodiments))}. Backbone: `{policy['backbone']}` "
        f"(frozen all-MiniLM-L6-v2 text encoder, referenced by package, not stored). Hidden size "
        f"{policy['hidden_size']}, {policy['depth']} expert blocks, chunks of {policy['horizon']} actions, "
        f"{_head(policy)}, main view {policy['image_size']} px, wrist views {policy['wrist_image_size']} px."),
        "",
        "## Data",
        "",
        "Scripted teleoperation in this project's MuJoCo simulation (`vla collect`, seeds from "
        f"{DEMONSTRATIONS.start}; evaluation",
        f"seeds start at {EVALUATION.start}), successful episodes only, training wording of `pick_cube` only:",
        "",
        *_dataset_rows(config["datasets"]),
        "",
        f"{config['held_out_episodes']} episode(s) per dataset were held out for the validation L1.",
        "",
        "## Training",
        "",
        f"Command: `{command}` (collect, train with `config/train/default_checkpoint.yaml`, evaluate, write this card).",
        (f"{config['steps']} steps of batch {config['batch_size']}, learning rate {config['learning_rate']} "
        f"(warm-up {config['warmup_steps']}, cosine), seed {config['seed']}, in {train_seconds / 60:.0f} minutes "
        f"on {platform.machine()} with {os.cpu_count()} CPU cores "
        "shared with other work."),
        f"Final training loss {final['loss']:.3f} (step {final['step']})" if final else "No training loss logged.",
    ]
    if config.get("keypoint_placements"):
        keypoints = _last(metrics, "val_keypoint_rms/" + sorted(embodiments)[0])
        scores = ", ".join(f"{key.split('/')[1]} {value:.3f}" for key, value in (keypoints or {}).items()
                           if key.startswith("val_keypoint_rms/"))
        lines.insert(-1, f"Keypoint supervision: {policy['main_keypoints']} keypoints; keypoint 0 learned the named "
                         f"cube's image position from {config['keypoint_placements']} rendered views per robot "
                         f"(seeds from {config['keypoint_seed']}), {config['keypoint_pretrain_steps']} steps alone, "
                         f"then beside the action loss; on held-out views it lies {scores} image half-widths (RMS) "
                         f"from the named cube.")
    if config.get("instruction_paraphrases"):
        templates = [template for group in config["instruction_paraphrases"] for template in group]
        leaked = sorted(set(templates) & set(HELD_OUT_WORDINGS))
        lines.insert(-1, f"Instruction paraphrases: with probability {config['instruction_paraphrase_rate']} a training "
                         f"text was reworded by another of {len(templates)} templates (`instruction_paraphrases` in the "
                         "config); " + (f"the evaluation's held-out paraphrases {leaked} are among them, so they are "
                                        "not held out." if leaked else
                                        "the evaluation's held-out paraphrases are not among them."))
    for line in _stages(config):
        lines.insert(-1, line)
    if note:
        lines.insert(-1, note)
    if validation:
        per_robot = ", ".join(f"{key.split('/')[1]} {value:.3f}" for key, value in validation.items()
                              if key.startswith("val_l1/"))
        lines[-1] += (f"; validation L1 of sampled chunks (normalised units) {validation['val_l1']:.3f} at step "
                      f"{validation['step']} ({per_robot}).")
    lines += ["Loss curve: `loss_curve.png`; every logged step: `metrics.jsonl`.", "", "## Closed-loop evaluation", ""]
    if evaluation.is_file():
        lines += [evaluation.read_text().strip(), "", "Chart: `eval/success_rate.png`."]
    else:
        lines.append("Not evaluated yet: run `vla eval` (see the README).")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--run", type=Path, required=True, help="the vla train output directory")
    parser.add_argument("--train-seconds", type=float, required=True)
    parser.add_argument("--command", default="make checkpoint")
    parser.add_argument("--note", default="", help="how the run that made these weights differed from the command")
    args = parser.parse_args()
    (args.checkpoint / "README.md").write_text(model_card(args.checkpoint, args.run, args.train_seconds, args.command,
                                                                  args.note))
    print(f"wrote {args.checkpoint / 'README.md'}")


if __name__ == "__main__":
    main()

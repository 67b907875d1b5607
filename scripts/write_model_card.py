"""Write the model card (README.md) of the checkpoint or policy set trained by
scripts/train_default_checkpoint.sh.

Everything on the card is read from what the runs left behind, so it cannot drift from the
weights: each checkpoint's training history (`vla_core.training.lineage`: the config every stage
saved, and its metrics), the datasets' LeRobot metadata and the evaluation tables `vla eval` wrote
(`eval/results.md`, or `eval/<robot>/results.md` for a set).

    python scripts/write_model_card.py --checkpoint checkpoints/default --command "make checkpoint"
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from pathlib import Path

from vla_core.policy_set import is_policy_set, read_policy_set
from vla_core.seeds import DEMONSTRATIONS, EVALUATION
from vla_core.sim.tasks import HELD_OUT_WORDINGS
from vla_core.training.lineage import TrainingStage, training_lineage


def _last(metrics: list[dict], key: str) -> dict | None:
    return next((row for row in reversed(metrics) if key in row), None)


def _info(path: str) -> dict:
    return json.loads((Path(path) / "meta" / "info.json").read_text())


def _dataset_rows(datasets: list[dict]) -> list[str]:
    rows = ["| dataset | robot | episodes | frames | fps |", "| --- | --- | --- | --- | --- |"]
    for path in dict.fromkeys(str(Path(source["path"]).resolve()) for source in datasets):
        info = _info(path)
        rows.append(f"| `{_shown(path)}` | {info['robot_type']} | {info['total_episodes']} | {info['total_frames']} | "
                    f"{info['fps']} |")
    return rows


def _shown(path: str | Path) -> str:
    """A path as the card shows it: relative to the working directory (the recipe runs at the
    repository's root) when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _head(policy: dict) -> str:
    if policy.get("head", "flow") == "regression":
        return "regression head (one pass, L1 on the chunk)"
    return f"flow-matching head ({policy['flow_steps']} Euler steps)"


def _metrics(stage: TrainingStage) -> list[dict]:
    """The stage's logged steps up to its checkpoint, from the copy beside the checkpoint or the run."""
    for path in (stage.checkpoint / "metrics.jsonl", stage.run_directory / "metrics.jsonl",
                 stage.checkpoint.parents[2] / "metrics.jsonl" if len(stage.checkpoint.parents) > 2 else None):
        if path is not None and path.is_file():
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            return [row for row in rows if stage.step is None or row.get("step", 0) <= stage.step]
    return []


def _start(stage: TrainingStage, numbers: dict[Path, int]) -> str:
    """How the stage began; `numbers` are the stages already on the card, by checkpoint path."""
    if not stage.started_from:
        return "from scratch"
    what = "all weights" if stage.started_from == "init_from" else "observation encoders (a new expert and head)"
    source = Path(stage.source)
    if source in numbers:
        return f"{what} from stage {numbers[source]}"
    return f"{what} from `{stage.source}`" + (" (no longer on this machine)" if stage.source_missing else "")


def _treatment(config: dict) -> str:
    """What the stage did to the pretrained encoders: frozen and cached, slowed or trained fully."""
    if config.get("freeze_stems_at", -1) == 0:
        return ("conv stems frozen, their outputs computed once per frame (`freeze_stems_at`, "
                "vla_core.training.feature_cache)")
    if config.get("freeze_stems_at", -1) > 0:
        return f"conv stems frozen and cached from step {config['freeze_stems_at']}"
    scale = config.get("vision_language_lr_scale", 1.0)
    return "every weight trained" + (f" (encoders at {scale}x the learning rate)" if scale != 1.0 else "")


def _keypoints(config: dict, policy: dict, metrics: list[dict]) -> str:
    if not config.get("keypoint_placements"):
        return ""
    keypoints = _last(metrics, "val_keypoint_rms/" + _robots(config)[0])
    scores = ", ".join(f"{key.split('/')[1]} {value:.3f}" for key, value in (keypoints or {}).items()
                       if key.startswith("val_keypoint_rms/"))
    return (f" Keypoint 0 of {policy['main_keypoints']} learned the named cube's image position from "
            f"{config['keypoint_placements']} rendered views per robot (seeds from {config['keypoint_seed']})"
            + (f", {config['keypoint_pretrain_steps']} steps alone first" if config.get("keypoint_pretrain_steps")
               else "") + (f"; on held-out views {scores} image half-widths (RMS) from the cube." if scores else "."))


def _paraphrases(config: dict) -> str:
    if not config.get("instruction_paraphrases"):
        return ""
    templates = [template for group in config["instruction_paraphrases"] for template in group]
    leaked = sorted(set(templates) & set(HELD_OUT_WORDINGS))
    return (f" Texts reworded with probability {config['instruction_paraphrase_rate']} by {len(templates)} templates; "
            + (f"the held-out paraphrases {leaked} are among them, so they are not held out." if leaked
               else "the evaluation's held-out paraphrases are not among them."))


def _losses(metrics: list[dict]) -> str:
    final, validation = _last(metrics, "loss"), _last(metrics, "val_l1")
    text = f" Final training loss {final['loss']:.3f} (step {final['step']})" if final else " No loss logged"
    if validation:
        per_robot = ", ".join(f"{key.split('/')[1]} {value:.3f}" for key, value in validation.items()
                              if key.startswith("val_l1/"))
        text += f"; validation L1 {validation['val_l1']:.3f} at step {validation['step']} ({per_robot})"
    return text + "."


def _robots(config: dict) -> list[str]:
    return sorted({_info(source["path"])["robot_type"] for source in config["datasets"]})


def _stage_line(number: int, stage: TrainingStage, numbers: dict[Path, int]) -> str:
    config = stage.train_config
    policy = json.loads((stage.checkpoint / "config.json").read_text())["policy"]
    metrics = _metrics(stage)
    frames = sum(_info(source["path"])["total_frames"] for source in config["datasets"])
    samples = config["steps"] * config["batch_size"]
    speeds = [row["samples_per_second"] for row in metrics if "samples_per_second" in row]
    duration = f", about {samples / statistics.median(speeds) / 60:.0f} min at a median {statistics.median(speeds):.0f} " \
               "samples/s" if speeds else ""
    return (f"{number}. `{_shown(stage.run_directory)}`: {' and '.join(_robots(config))}, "
            f"{_start(stage, numbers)}; {config['steps']} steps of batch {config['batch_size']} "
            f"({samples / frames:.1f} passes over {frames} frames){duration}; learning rate {config['learning_rate']} "
            f"(warm-up {config['warmup_steps']}, cosine), {_treatment(config)}."
            + _keypoints(config, policy, metrics) + _paraphrases(config) + _losses(metrics))


def _members(checkpoint: Path) -> dict[str, Path]:
    if is_policy_set(checkpoint):
        return read_policy_set(checkpoint)
    return {", ".join(sorted(json.loads((checkpoint / "embodiments.json").read_text()))): checkpoint}


def _identity(stage: TrainingStage) -> tuple[str, int | None]:
    """A run and the step its checkpoint was saved at: the same stage wherever its files were copied."""
    return str(stage.run_directory), stage.step


def _training_lines(checkpoint: Path, members: dict[str, Path]) -> list[str]:
    """Each member's stages, numbered once across members so a shared first stage reads as shared."""
    numbers: dict[tuple[str, int | None], int] = {}
    by_path: dict[Path, int] = {}
    lines: list[str] = []
    for name, member in sorted(members.items()):
        stages = training_lineage(member)
        lines += ["", f"### `{_inside(checkpoint, member)}` (serves {name}): {len(stages)} stage(s)", ""]
        for stage in stages:
            identity = _identity(stage)
            if identity in numbers:
                by_path[stage.checkpoint] = numbers[identity]
                lines.append(f"{numbers[identity]}. (stage {numbers[identity]}, above)")
                continue
            numbers[identity] = by_path[stage.checkpoint] = len(numbers) + 1
            lines.append(_stage_line(numbers[identity], stage, by_path))
        lines.append(f"Loss curve `{_inside(checkpoint, member / 'loss_curve.png')}`, its logged steps "
                     "`metrics.jsonl` beside it.")
    return lines


def _inside(checkpoint: Path, path: Path) -> str:
    """A path inside the checkpoint directory as the card shows it: relative to the card."""
    return str(path.relative_to(checkpoint)) if path != checkpoint else "."


def _evaluation_lines(checkpoint: Path, members: dict[str, Path]) -> list[str]:
    tables = [checkpoint / "eval" / "results.md"] if not is_policy_set(checkpoint) else \
        [checkpoint / "eval" / name / "results.md" for name in sorted(members)]
    lines = ["", "## Closed-loop evaluation", ""]
    for table in tables:
        if table.is_file():
            lines += [table.read_text().strip().replace("# ", "### ", 1), "",
                      f"Chart: `{_inside(checkpoint, table.parent / 'success_rate.png')}`.", ""]
        else:
            lines += [f"Not evaluated yet (`{_inside(checkpoint, table)}`): run `vla eval` (see the README).", ""]
    return lines


def model_card(checkpoint: Path, command: str, note: str = "") -> str:
    members = _members(checkpoint)
    policy = json.loads((next(iter(members.values())) / "config.json").read_text())["policy"]
    datasets = [source for member in members.values() for stage in training_lineage(member)
                for source in stage.train_config["datasets"]]
    held_out = training_lineage(next(iter(members.values())))[-1].train_config["held_out_episodes"]
    kind = (f"A policy set (`policies.json`, vla_core.policy_set): one checkpoint per robot "
            f"({', '.join(f'`{name}`: `{_inside(checkpoint, path)}/`' for name, path in sorted(members.items()))}); name the "
            "directory and each robot is served by its own." if is_policy_set(checkpoint) else
            f"One checkpoint for {next(iter(members))}, one soft prompt each.")
    lines = [
        "# checkpoints/default: the shipped vla_ros policy", "",
        f"{kind} Each: backbone `{policy['backbone']}` (frozen all-MiniLM-L6-v2 text encoder, referenced by package, "
        f"not stored), hidden size {policy['hidden_size']}, {policy['depth']} expert blocks, chunks of "
        f"{policy['horizon']} actions, {_head(policy)}, main view {policy['image_size']} px, wrist views "
        f"{policy['wrist_image_size']} px.", "",
        f"Command: `{command}` (collect, train every stage, evaluate, write this card). Machine: "
        f"{platform.machine()}, {os.cpu_count()} CPU cores, shared with other work.",
        *(["", note] if note else []), "",
        "## Data", "",
        f"Scripted teleoperation in this project's MuJoCo simulation (`vla collect`, seeds from "
        f"{DEMONSTRATIONS.start}; evaluation seeds start at {EVALUATION.start}), successful episodes only, training "
        f"wording of `pick_cube` only; {held_out} episode(s) of each dataset held out for the validation L1 "
        f"(normalised units):", "",
        *_dataset_rows(datasets), "",
        "## Training",
        *_training_lines(checkpoint, members),
        *_evaluation_lines(checkpoint, members),
    ]
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint or a policy set")
    parser.add_argument("--command", default="make checkpoint")
    parser.add_argument("--note", default="", help="how the runs that made these weights differed from the command")
    args = parser.parse_args()
    (args.checkpoint / "README.md").write_text(model_card(args.checkpoint, args.command, args.note))
    print(f"wrote {args.checkpoint / 'README.md'}")


if __name__ == "__main__":
    main()

"""`make checkpoint`'s plumbing: each robot's stages start from the one before, the set serves each
robot its last stage, and the model card lists the stages from the checkpoints themselves.

Real training takes hours here, so `vla` is a stand-in that records its arguments and writes what
the real commands leave behind (a dataset's metadata; a checkpoint whose config.json holds the
run's config as `vla train` records it; an evaluation table). The script, its
configs, `vla_core.policy_set`, `vla_core.training.lineage` and the model card writer are the
real ones.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STAND_IN = """
import json, pathlib, sys
from vla_core.training.config import load_train_config
args = sys.argv[1:]
with open("calls.jsonl", "a") as calls:
    calls.write(json.dumps(args) + "\\n")
def option(name):
    return args[args.index(name) + 1]
if args[0] == "collect":
    meta = pathlib.Path(option("--output")) / "meta"
    meta.mkdir(parents=True)
    episodes = int(option("--episodes"))
    meta.joinpath("info.json").write_text(json.dumps({"total_frames": 100 * episodes, "total_episodes": episodes,
                                                      "robot_type": option("--embodiment"), "fps": 30}))
elif args[0] == "train":
    overrides = [args[index + 1] for index, arg in enumerate(args) if arg == "--set"]
    config = load_train_config(option("--config"), overrides).to_dict()  # what vla train records
    run = pathlib.Path(config["output_dir"])
    policy = run / "checkpoints" / f"step_{config['steps']:07d}" / "policy"
    policy.mkdir(parents=True)
    architecture = {"backbone": "builtin", "hidden_size": 128, "depth": 4, "horizon": 16, "flow_steps": 10,
                    "image_size": 96, "wrist_image_size": 64, "main_keypoints": 16}
    policy.joinpath("config.json").write_text(json.dumps(
        {"policy": architecture, "metadata": {"step": config["steps"], "train_config": config}}))
    run.joinpath("metrics.jsonl").write_text(json.dumps({"step": config["steps"], "loss": 0.03,
                                                         "samples_per_second": 100.0}) + "\\n")
    run.joinpath("loss_curve.png").write_bytes(b"")
elif args[0] == "eval":
    output = pathlib.Path(option("--output"))
    output.mkdir(parents=True)
    output.joinpath("results.md").write_text(f"# Closed-loop evaluation: {option('--embodiment')}\\n")
"""


def _workspace(tmp_path: Path) -> Path:
    """The script, the card writer and the training configs in a directory of their own, with a
    stand-in `vla` first on the PATH (the script sources env.sh from its root)."""
    (tmp_path / "scripts").mkdir()
    for name in ("train_default_checkpoint.sh", "write_model_card.py"):
        shutil.copy(ROOT / "scripts" / name, tmp_path / "scripts" / name)
    shutil.copytree(ROOT / "config" / "train", tmp_path / "config" / "train")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "stand_in_vla.py").write_text(STAND_IN)
    (bin_dir / "vla").write_text(f'#!/bin/sh\nexec "{sys.executable}" "{bin_dir / "stand_in_vla.py"}" "$@"\n')
    (bin_dir / "vla").chmod(0o755)
    (tmp_path / "env.sh").write_text(f'export PATH="{bin_dir}:$PATH"\n')
    return tmp_path


def test_each_robots_stages_chain_into_a_set_whose_card_lists_them(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    result = subprocess.run(["bash", "scripts/train_default_checkpoint.sh"], cwd=workspace, capture_output=True,
                            text=True, timeout=120, check=False,
                            env={**os.environ, "SO101_EPISODES": "4", "ALOHA_EPISODES": "2", "STEPS": "3",
                                 "FROZEN_PASSES": "2", "EVAL_EPISODES": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    calls = [json.loads(line) for line in (workspace / "calls.jsonl").read_text().splitlines()]
    trainings = [call for call in calls if call[0] == "train"]
    assert [call[2] for call in trainings] == ["config/train/default_checkpoint.yaml",
                                               "config/train/default_checkpoint_frozen.yaml",
                                               "config/train/default_checkpoint_finetune.yaml"]
    stage1 = "outputs/default_checkpoint/run/checkpoints/step_0000003/policy"
    frozen_steps = (2 * 400 + 63) // 64  # FROZEN_PASSES x the SO-101's frames / batch 64
    assert f"encoders_from={stage1}" in trainings[1] and f"steps={frozen_steps}" in trainings[1]
    assert (f"init_from=outputs/default_checkpoint/run_so101_frozen/checkpoints/step_{frozen_steps:07d}/policy"
            in trainings[2])
    assert all("aloha_pick" not in " ".join(call) for call in trainings[1:]), "the SO-101's stages saw ALOHA data"

    target = workspace / "checkpoints" / "default"
    assert json.loads((target / "policies.json").read_text()) == {"aloha": "aloha", "so101": "so101"}
    served = {robot: json.loads((target / robot / "config.json").read_text())["metadata"]["train_config"]
              for robot in ("so101", "aloha")}
    assert served["so101"]["output_dir"] == "outputs/default_checkpoint/run_so101_finetune"
    assert served["aloha"]["output_dir"] == "outputs/default_checkpoint/run"  # no stages of its own: stage 1
    assert sorted(call[call.index("--embodiment") + 1] for call in calls if call[0] == "eval") == ["aloha", "so101"]

    card = (target / "README.md").read_text()
    assert "### `aloha` (serves aloha): 1 stage(s)" in card and "### `so101` (serves so101): 3 stage(s)" in card
    assert "1. (stage 1, above)" in card
    assert "observation encoders (a new expert and head) from stage 1" in card
    assert "all weights from stage 2" in card
    assert "\n### Closed-loop evaluation: so101\n" in card and "\n# Closed-loop" not in card  # nested under the card

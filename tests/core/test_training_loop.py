"""The training loop: exact resume, X-VLA's two-step adaptation with LoRA, what a run leaves behind."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from vla_core.cli import main as vla
from vla_core.model.policy import VLAPolicy
from vla_core.training.config import TrainConfig, TrainConfigError
from vla_core.training.loop import Trainer, step_directory, train

from .training_episodes import synthetic_episode, tiny_policy_settings


@pytest.fixture(scope="module")
def so101_episodes():
    return [synthetic_episode("so101", 24, seed) for seed in range(3)]


def config_for(output, **settings) -> TrainConfig:
    values = {"datasets": [{"path": "so101"}], "policy": tiny_policy_settings(), "steps": 4, "batch_size": 4,
                  "micro_batch_size": 2, "warmup_steps": 1, "save_every": 2, "val_every": 2, "val_chunks": 4, "log_every": 1,
                  "output_dir": str(output)}
    values.update(settings)
    return TrainConfig(**values)


def weights(directory) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "training_state" / "model.safetensors"))


def assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [name for name in a if not torch.equal(a[name], b[name])]
    assert not different, f"tensors differ after resume: {different[:5]}"


@pytest.mark.slow
def test_resume_continues_exactly(tmp_path, so101_episodes) -> None:
    final = train(config_for(tmp_path / "straight", save_every=4), [so101_episodes])
    assert final == step_directory(tmp_path / "straight", 4) / "policy"
    train(config_for(tmp_path / "halves", steps=2), [so101_episodes])
    train(config_for(tmp_path / "halves"), [so101_episodes], resume=tmp_path / "halves")  # the newest step: 2
    straight, halves = step_directory(tmp_path / "straight", 4), step_directory(tmp_path / "halves", 4)
    assert_identical(weights(straight), weights(halves))
    assert not torch.equal(weights(straight)["expert.head.weight"],
                           weights(step_directory(tmp_path / "halves", 2))["expert.head.weight"])
    saved_optimizer = load_file(str(halves / "training_state" / "optimizer.safetensors"))
    assert_identical(load_file(str(straight / "training_state" / "optimizer.safetensors")), saved_optimizer)
    # what the run leaves: a loadable checkpoint with fitted statistics, metrics, the loss curve
    policy = VLAPolicy.from_pretrained(straight / "policy")
    assert policy.normalizers["so101"].action.kind == "quantile"
    records = [json.loads(line) for line in (tmp_path / "halves" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4]
    assert [r["step"] for r in records if "val_l1" in r] == [2, 4] and all(r.get("val_l1", 1) > 0 for r in records)
    assert (tmp_path / "halves" / "loss_curve.png").stat().st_size > 1000


@pytest.mark.slow
def test_new_robot_warms_up_its_prompt_then_trains_jointly_with_lora(tmp_path, so101_episodes) -> None:
    base = train(config_for(tmp_path / "base", steps=1, val_every=0), [so101_episodes])
    aloha = [synthetic_episode("aloha", 20, seed) for seed in range(2)]
    settings = {"datasets": [{"path": "aloha"}], "policy": {}, "init_from": str(base), "prompt_warmup_steps": 2,
                    "lora_rank": 2, "steps": 4, "save_every": 2}
    trainer = Trainer(config_for(tmp_path / "adapt", **settings), [aloha])
    assert trainer.new_embodiments == ["aloha"] and set(trainer.policy.embodiments) == {"so101", "aloha"}
    warmup = trainer.phases.trainable(0)
    assert "expert.prompts.aloha" in warmup and "expert.prompts.so101" not in warmup
    assert not any("lora_" in name or "blocks" in name for name in warmup)
    assert any("lora_" in name for name in trainer.phases.trainable(2))
    trainer.run()
    before = VLAPolicy.from_pretrained(base)
    during = weights(step_directory(tmp_path / "adapt", 2))
    after = weights(step_directory(tmp_path / "adapt", 4))
    assert torch.equal(during["expert.prompts.so101"], before.expert.prompts["so101"].detach())
    assert torch.equal(during["expert.blocks.0.mlp.fc1.lora_B.default.weight"], torch.zeros_like(
        during["expert.blocks.0.mlp.fc1.lora_B.default.weight"]))  # adapters untouched during the warm-up
    assert not torch.equal(after["expert.blocks.0.mlp.fc1.lora_B.default.weight"],
                           during["expert.blocks.0.mlp.fc1.lora_B.default.weight"])
    assert not torch.equal(after["expert.prompts.aloha"], during["expert.prompts.aloha"])
    adapted = VLAPolicy.from_pretrained(step_directory(tmp_path / "adapt", 4) / "policy")  # LoRA merged: a plain policy
    assert set(adapted.embodiments) == {"so101", "aloha"}
    assert not torch.equal(adapted.expert.blocks[0].mlp.fc1.weight, before.expert.blocks[0].mlp.fc1.weight)
    # a resume inside the warm-up continues exactly, phase switch and LoRA included
    train(config_for(tmp_path / "adapt", **settings), [aloha], resume=step_directory(tmp_path / "adapt", 2))
    assert_identical(after, weights(step_directory(tmp_path / "adapt", 4)))


def test_vla_train_refuses_bad_input_by_name(tmp_path, capsys) -> None:
    """Each bad input ends the command with exit code 2 and one line naming it, not a traceback."""
    cases = [
        (["--config", "config/train/default.yaml"], "no datasets to train on"),
        (["--config", "config/train/default.yaml", "--set", "steps=abc"], "steps must be of type int, got 'abc'"),
        (["--config", "config/train/default.yaml", "--set", f"datasets=[{tmp_path}/missing]",
          "--set", f"output_dir={tmp_path}/out"], f"dataset {tmp_path}/missing does not exist"),
        (["--resume", str(tmp_path)], "neither a step directory"),
    ]
    for arguments, message in cases:
        assert vla(["train", *arguments]) == 2, arguments
        error = capsys.readouterr().err
        assert error.startswith("vla train: ") and message in error, (arguments, error)


@pytest.mark.slow
def test_vla_train_on_a_lerobot_dataset(tmp_path, so101_episodes) -> None:
    from vla_core.data.lerobot_v3 import DatasetWriter
    from vla_core.embodiment import load_embodiment

    with DatasetWriter(tmp_path / "pick", load_embodiment("so101"), 30.0, action_space="eef_delta") as writer:
        for episode in so101_episodes:
            writer.add(episode)
    policy = json.dumps(tiny_policy_settings())
    assert vla(["train", "--config", "config/train/default.yaml", "--set", f"datasets=[{tmp_path / 'pick'}]",
                "--set", f"policy={policy}", "--set", "steps=2", "--set", "batch_size=2", "--set",
                "micro_batch_size=2", "--set", "num_workers=1", "--set", "val_chunks=2",
                "--set", f"output_dir={tmp_path / 'run'}"]) == 0
    trained = VLAPolicy.from_pretrained(step_directory(tmp_path / "run", 2) / "policy")
    assert trained.embodiments["so101"].action_space == "eef_delta"  # the dataset's training action space
    assert trained.config.image_size == 16
    assert "val_l1" in (tmp_path / "run" / "metrics.jsonl").read_text()


def test_a_new_policy_can_start_from_another_checkpoints_encoders(tmp_path, so101_episodes) -> None:
    base = VLAPolicy.from_pretrained(train(config_for(tmp_path / "base", steps=1, val_every=0), [so101_episodes]))
    trainer = Trainer(config_for(tmp_path / "new", encoders_from=str(base_dir := step_directory(tmp_path / "base", 1)
                                                                       / "policy"),
                                 policy=tiny_policy_settings(head="regression")), [so101_episodes])
    mine, theirs = trainer.policy.state_dict(), base.state_dict()
    assert torch.equal(mine["vision_language.vision.stem.0.weight"], theirs["vision_language.vision.stem.0.weight"])
    assert torch.equal(mine["wrist.patches.stem.0.weight"], theirs["wrist.patches.stem.0.weight"])
    assert trainer.policy.config.head == "regression"
    with pytest.raises(TrainConfigError, match="encoders_from .*vision_language.vision.stem.0.weight"):
        Trainer(config_for(tmp_path / "other", encoders_from=str(base_dir),
                           policy=tiny_policy_settings(vision_width=16)), [so101_episodes])

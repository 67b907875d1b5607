"""Adaptation hooks: X-VLA's prompt warm-up, LoRA through peft, learning-rate groups."""
from __future__ import annotations

import torch

import pytest

from vla_core.adaptation import (apply_lora, freeze_for_prompt_warmup, merge_lora, parameter_groups,
                                 unfreeze_for_joint_training)
from vla_core.checkpoint import CheckpointError
from vla_core.model.policy import VLAPolicy
from vla_core.normalization import EmbodimentNormalizers

from .toy_policies import batch_for, sample, toy_embodiment, toy_policy, train


def test_prompt_warmup_trains_only_the_new_prompt_and_the_action_head() -> None:
    policy = toy_policy([toy_embodiment("old")])
    policy.add_embodiment(toy_embodiment("new"), EmbodimentNormalizers.identity(2, 2), prompt_from="old")
    torch.testing.assert_close(policy.expert.prompts["new"], policy.expert.prompts["old"])
    trainable = freeze_for_prompt_warmup(policy, "new")
    assert "expert.prompts.new" in trainable and "expert.prompts.old" not in trainable
    assert all(name.startswith(("expert.prompts.new", "expert.step_in", "expert.head", "expert.norm_out"))
               for name in trainable)
    frozen_before = {n: p.detach().clone() for n, p in policy.named_parameters() if not p.requires_grad}
    train(policy, lambda g: batch_for(policy, ["new"] * 8, torch.randn(8, 8, 2, generator=g)), steps=3)
    assert all(torch.equal(p, frozen_before[n]) for n, p in policy.named_parameters() if n in frozen_before)
    unfreeze_for_joint_training(policy)
    assert policy.expert.blocks[0].self_attention.q.weight.requires_grad
    assert not any(p.requires_grad for p in policy.vision_language.text.parameters())


def test_lora_wraps_the_expert_and_trains_only_adapters_prompts_and_head() -> None:
    policy = toy_policy([toy_embodiment("toy")])
    wrapped = apply_lora(policy, rank=4)
    assert "expert.blocks.0.self_attention.q" in wrapped and "expert.blocks.1.mlp.fc2" in wrapped
    # cross-attention is not gated by AdaLN (whose gates start at zero in an untrained policy)
    q = policy.expert.blocks[0].cross_attention.q
    base_q = q.base_layer.weight.detach().clone()
    lora_b = q.lora_B["default"].weight.detach().clone()
    train(policy, lambda g: batch_for(policy, ["toy"] * 8, torch.randn(8, 8, 2, generator=g)), steps=5)
    assert torch.equal(q.base_layer.weight, base_q)
    assert not torch.equal(q.lora_B["default"].weight, lora_b)


def test_parameter_groups_split_vision_language_prompts_and_rest() -> None:
    policy = toy_policy([toy_embodiment("toy")])
    groups = {g["name"]: g for g in parameter_groups(policy, 1e-3, vision_language_scale=0.1)}
    assert set(groups) == {"vision_language", "soft_prompts", "rest"}
    assert groups["vision_language"]["lr"] == 1e-4 and groups["soft_prompts"]["weight_decay"] == 0.0
    counted = sum(len(g["params"]) for g in groups.values())
    assert counted == sum(1 for p in policy.parameters() if p.requires_grad)


def test_merged_lora_gives_the_same_chunks_and_saves_as_a_plain_policy(tmp_path) -> None:
    policy = toy_policy([toy_embodiment("toy")])
    wrapped = apply_lora(policy, rank=4, include_vision_language=True)
    assert "vision_language.fusion.attention.q" in wrapped
    assert not any(name.startswith("vision_language.text.") for name in wrapped)  # referenced weights stay as loaded
    train(policy, lambda g: batch_for(policy, ["toy"] * 8, torch.randn(8, 8, 2, generator=g)), steps=5)
    batch = batch_for(policy, ["toy"] * 2, torch.zeros(2, 8, 2))
    with_adapters = sample(policy, batch, seed=1)
    with pytest.raises(CheckpointError, match="carries LoRA adapters .* merge them"):
        policy.save_pretrained(tmp_path / "adapters")
    assert sorted(merge_lora(policy)) == sorted(wrapped)
    assert not any("lora_" in name for name, _ in policy.named_parameters())
    merged = sample(policy, batch, seed=1)
    assert abs(merged - with_adapters).max() < 1e-5
    loaded = VLAPolicy.from_pretrained(policy.save_pretrained(tmp_path / "merged"))
    assert (sample(loaded, batch, seed=1) == merged).all()

"""Instruction paraphrase augmentation: training texts are reworded within their group, slots and
prompt kept, at the configured rate, and the trainer feeds the reworded texts to the policy."""
from __future__ import annotations

import collections

import pytest
import torch
from vla_core.training.config import TrainConfig, TrainConfigError
from vla_core.training.loop import Trainer
from vla_core.training.paraphrase import InstructionParaphraser

from .training_episodes import synthetic_episode, tiny_policy_settings

GROUP = ["pick up the {colour} cube", "take the {colour} cube", "pick the {colour} object up"]


def test_a_matching_text_is_reworded_by_the_other_templates_of_its_group() -> None:
    paraphraser = InstructionParaphraser([GROUP], rate=1.0)
    generator = torch.Generator().manual_seed(0)
    seen = collections.Counter(paraphraser.reword("<so101> pick up the red cube.", generator) for _ in range(300))
    assert set(seen) == {"<so101> take the red cube.", "<so101> pick the red object up."}
    assert min(seen.values()) > 100  # both alternatives drawn about equally
    assert paraphraser.reword("<aloha> take the blue cube", generator) in {
        "<aloha> pick up the blue cube", "<aloha> pick the blue object up"}
    assert paraphraser.reword("put the red cube in the bin", generator) == "put the red cube in the bin"


def test_the_rate_is_the_share_of_reworded_texts_and_reproducible_by_seed() -> None:
    half = InstructionParaphraser([GROUP], rate=0.5)
    texts = [half.reword("pick up the green cube", torch.Generator().manual_seed(seed)) for seed in range(400)]
    assert 0.4 < sum(text != "pick up the green cube" for text in texts) / 400 < 0.6
    assert texts == [half.reword("pick up the green cube", torch.Generator().manual_seed(seed)) for seed in range(400)]
    never = InstructionParaphraser([GROUP], rate=0.0)
    assert never.reword("pick up the green cube", torch.Generator()) == "pick up the green cube"


@pytest.mark.parametrize("groups, rate, message", [
    ([["pick up the {colour} cube"]], 0.5, r"instruction_paraphrases\[0\] needs at least two templates"),
    ([GROUP, ["take the {colour} cube", "take the {size} cube"]], 0.5, r"instruction_paraphrases\[1\] .* same slots"),
    ([GROUP], 1.5, r"instruction_paraphrase_rate must be in \[0, 1\], got 1.5"),
])
def test_bad_paraphrase_settings_are_refused_by_name(groups, rate, message) -> None:
    with pytest.raises(TrainConfigError, match=message):
        TrainConfig(datasets=["x"], instruction_paraphrases=groups, instruction_paraphrase_rate=rate)


def test_the_trainer_feeds_the_policy_reworded_instructions(tmp_path) -> None:
    episodes = [synthetic_episode("so101", 24, seed, task="pick up the red cube") for seed in range(2)]
    config = TrainConfig(datasets=[{"path": "so101"}], policy=tiny_policy_settings(), steps=1, batch_size=4,
                         micro_batch_size=4, warmup_steps=1, val_every=0, output_dir=str(tmp_path / "run"),
                         instruction_paraphrases=[GROUP], instruction_paraphrase_rate=1.0)
    trainer = Trainer(config, [episodes])
    seen: list[str] = []
    forward = trainer.wrapped.forward

    def recording(batch, **kwargs):
        seen.extend(batch["texts"])
        return forward(batch, **kwargs)

    trainer.wrapped.forward = recording
    trainer.train_step(1, trainer.micro_batches())
    assert len(seen) == 4
    assert all("pick up the red cube" not in text for text in seen)
    assert all("take the red cube" in text or "pick the red object up" in text for text in seen)

"""Write a tiny untrained LeRobot SmolVLA policy directory, made and saved by LeRobot's own classes
(`SmolVLAConfig`, `SmolVLAPolicy`, `make_pre_post_processors`), with a toy SmolVLM built here in
place of SmolVLM2-500M (whose config, processor and tokenizer would need a download): what the
LeRobot backend's SmolVLA test serves offline.

Runs with the LeRobot environment's Python (scripts/lerobot_check.sh builds it), never the
project's: `python scripts/make_tiny_lerobot_smolvla.py DIR`. DIR/vlm holds the toy VLM as
transformers saves one (config.json, the processor's image, video and tokenizer files: a
word-level tokenizer with SmolVLM's image tokens), named by its absolute path as `vlm_model_name`,
as a user's local copy would be; the policy has one 64x64 `front` camera and a 6-value state and
action, so it maps onto the SO-101 profile.
"""
from __future__ import annotations

import sys
from pathlib import Path

from tiny_lerobot import save_policy, so101_features, unit_statistics

WORDS = "pick up the cube place it in bin red blue green a to on and put move grasp".split()
IMAGE_TOKENS = {"fake_image_token": "<fake_token_around_image>", "image_token": "<image>",
                "end_of_utterance_token": "<end_of_utterance>", "global_image_token": "<global-img>"}


def write_vlm(directory: Path) -> None:
    """A two-layer SmolVLM config and its processor, saved as transformers saves them."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        PreTrainedTokenizerFast,
        SmolVLMConfig,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )

    specials = ["<|im_start|>", "<pad>", "<unk>", *dict.fromkeys(IMAGE_TOKENS.values())]
    vocab = {token: index for index, token in enumerate(specials + list(dict.fromkeys(WORDS)))}
    words = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, bos_token="<|im_start|>", pad_token="<pad>",
                                        eos_token="<end_of_utterance>", unk_token="<unk>",
                                        extra_special_tokens=IMAGE_TOKENS)
    images = SmolVLMImageProcessor(do_image_splitting=False, size={"longest_edge": 64},
                                   max_image_size={"longest_edge": 64})
    SmolVLMProcessor(image_processor=images, tokenizer=tokenizer, video_processor=SmolVLMVideoProcessor(),
                     image_seq_len=4, chat_template="{{ messages }}").save_pretrained(directory)
    SmolVLMConfig(text_config={"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
                               "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
                               "head_dim": 32, "vocab_size": len(vocab), "max_position_embeddings": 256},
                  vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                 "num_attention_heads": 2, "image_size": 64, "patch_size": 16},
                  scale_factor=2, image_token_id=vocab["<image>"], vocab_size=len(vocab)).save_pretrained(directory)


def main(directory: str) -> None:
    import torch
    from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

    torch.manual_seed(0)
    output = Path(directory).resolve()
    write_vlm(output / "vlm")
    inputs, outputs = so101_features()
    config = SmolVLAConfig(input_features=inputs, output_features=outputs,
                           chunk_size=20, n_action_steps=20, resize_imgs_with_padding=(64, 64),
                           vlm_model_name=str(output / "vlm"), load_vlm_weights=False, num_vlm_layers=2,
                           num_steps=2, max_state_dim=8, max_action_dim=8, tokenizer_max_length=16, device="cpu")
    save_policy(SmolVLAPolicy, config, str(output), unit_statistics())


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_tiny_lerobot_smolvla.py DIR")
    main(sys.argv[1])

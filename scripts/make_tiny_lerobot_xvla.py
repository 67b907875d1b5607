"""Write a tiny untrained LeRobot X-VLA policy directory, made and saved by LeRobot's own classes
(`XVLAConfig`, `XVLAPolicy`, `make_pre_post_processors`), with a tokenizer built here instead of
BART's (which would need a download): what the LeRobot backend's X-VLA test serves offline.

Runs with the LeRobot environment's Python (scripts/lerobot_check.sh builds it), never the
project's: `python scripts/make_tiny_lerobot_xvla.py DIR`. The real architecture at toy sizes
(Florence-2's DaViT and BART-style encoder at width 32, one soft-prompt transformer layer, four
domains), one 64x64 `front` camera and a 6-value state and action (`action_mode: auto`), so it
maps onto the SO-101 profile. The tokenizer is a word-level one over a few dozen words, saved in
DIR/tokenizer and named by its absolute path in the pre-processor, as a user's local copy would be.
"""
from __future__ import annotations

import sys
from pathlib import Path

from tiny_lerobot import save_policy, so101_features, unit_statistics

WORDS = ("pick up the cube place it in bin red blue green a an to on of and put move grasp open close "
         "gripper left right arm robot").split()


def write_tokenizer(directory: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    vocab = {token: index for index, token in enumerate(specials + list(dict.fromkeys(WORDS)))}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", pad_token="<pad>",
                                      eos_token="</s>", unk_token="<unk>")
    wrapped.save_pretrained(directory)


def main(directory: str) -> None:
    import torch
    from lerobot.policies.xvla.configuration_xvla import XVLAConfig
    from lerobot.policies.xvla.modeling_xvla import XVLAPolicy

    torch.manual_seed(0)
    output = Path(directory).resolve()
    write_tokenizer(output / "tokenizer")
    width = 32
    vision = {"model_type": "davit", "drop_path_rate": 0.0, "patch_size": [7, 3, 3, 3], "patch_stride": [4, 2, 2, 2],
              "patch_padding": [3, 1, 1, 1], "patch_prenorm": [False, True, True, True],
              "dim_embed": [width] * 4, "num_heads": [1, 1, 1, 1], "num_groups": [1, 1, 1, 1],
              "depths": [1, 1, 1, 1], "window_size": 2, "projection_dim": width,
              "visual_temporal_embedding": {"type": "COSINE", "max_temporal_embeddings": 8},
              "image_pos_embed": {"type": "learned_abs_2d", "max_pos_embeddings": 16},
              "image_feature_source": ["spatial_avg_pool", "temporal_avg_pool"]}
    text = {"vocab_size": 4 + len(set(WORDS)), "d_model": width, "encoder_layers": 1, "decoder_layers": 1,
            "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_ffn_dim": 64,
            "decoder_ffn_dim": 64, "max_position_embeddings": 64, "dropout": 0.0}
    inputs, outputs = so101_features()
    config = XVLAConfig(input_features=inputs, output_features=outputs,
                        chunk_size=20, n_action_steps=20,
                        florence_config={"vision_config": vision, "text_config": text, "projection_dim": width,
                                         "vocab_size": text["vocab_size"]},
                        tokenizer_name=str(output / "tokenizer"), tokenizer_max_length=16,
                        hidden_size=width, depth=1, num_heads=2, num_domains=4, len_soft_prompts=4, dim_time=8,
                        max_len_seq=64, action_mode="auto", max_state_dim=8, max_action_dim=8,
                        num_denoising_steps=2, device="cpu")
    save_policy(XVLAPolicy, config, str(output), unit_statistics())


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_tiny_lerobot_xvla.py DIR")
    main(sys.argv[1])

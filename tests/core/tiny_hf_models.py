"""Tiny random-weight Hugging Face VLMs built and saved locally, so tests exercise the real
loading path (from_pretrained on a directory) of real architectures without any download."""
from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

CORPUS = ["pick up the red cube", "grab the blue block", "the robot is a toy arm with single arm"] * 5


def _tokenizer(special_tokens: list[str]):
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, special_tokens=special_tokens,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token=special_tokens[0], eos_token=special_tokens[0],
                                   bos_token=special_tokens[1])


def build_qwen2_vl(directory: Path) -> Path:
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessor

    tokenizer = _tokenizer(["<|endoftext|>", "<|im_start|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>"])
    config = Qwen2VLConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2,
                         rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}),
        vision_config=dict(depth=2, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2),
        image_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        vision_start_token_id=tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tokenizer.convert_tokens_to_ids("<|vision_end|>"),
    )
    return _save(directory, Qwen2VLForConditionalGeneration(config),
                 Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=56 * 56), tokenizer)


def build_paligemma(directory: Path) -> Path:
    from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration, SiglipImageProcessor

    tokenizer = _tokenizer(["<pad>", "<bos>", "<eos>", "<image>"])
    config = PaliGemmaConfig(
        text_config=dict(model_type="gemma", vocab_size=len(tokenizer), hidden_size=48, intermediate_size=96,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, head_dim=12),
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"), projection_dim=48,
    )
    return _save(directory, PaliGemmaForConditionalGeneration(config),
                 SiglipImageProcessor(size={"height": 32, "width": 32}), tokenizer)


def _save(directory: Path, model, image_processor, tokenizer) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    image_processor.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


BUILDERS = {"qwen2_vl": build_qwen2_vl, "paligemma": build_paligemma}

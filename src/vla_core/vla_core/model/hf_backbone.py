"""Hugging Face vision-language models as the policy's vision-language encoder.

X-VLA conditions its action transformer on a VLM's hidden states; this module loads any
supported VLM from a LOCAL directory (nothing is downloaded) and returns the hidden states of
the image + instruction sequence as `EncodedTokens`.

What differs between architectures (how the text marks where image tokens go, how many there
are, extra inputs) is data: one `Architecture` entry per `config.model_type`, not branches
spread through the code. The image processor and tokenizer are loaded separately (not through
the architecture's multimodal processor, which needs torchvision for video support).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vla_core.model.interfaces import EncodedTokens, VisionLanguageEncoder


@dataclass(frozen=True)
class Architecture:
    """How one VLM family wants its inputs."""

    image_token: str  # placeholder token, repeated once per image feature
    template: str  # "{image}" = the repeated placeholder, "{text}" = the instruction, "{bos}"
    image_token_count: Callable[[dict, object], int]  # (image processor output, model config) -> tokens per image
    extra_inputs: Callable[[torch.Tensor, object], dict] = lambda input_ids, config: {}


def _qwen_image_tokens(pixels: dict, config) -> int:
    merge = config.vision_config.spatial_merge_size
    return int(pixels["image_grid_thw"][0].prod()) // merge**2


def _qwen_mm_token_types(input_ids: torch.Tensor, config) -> dict:
    """Qwen2-VL's multimodal RoPE needs to know which tokens are image tokens (type 1)."""
    return {"mm_token_type_ids": (input_ids == config.image_token_id).long()}


def _paligemma_image_tokens(pixels: dict, config) -> int:
    return (config.vision_config.image_size // config.vision_config.patch_size) ** 2


_QWEN = Architecture("<|image_pad|>", "<|vision_start|>{image}<|vision_end|>{text}", _qwen_image_tokens,
                     _qwen_mm_token_types)
ARCHITECTURES: dict[str, Architecture] = {
    "qwen2_vl": _QWEN,
    "qwen2_5_vl": _QWEN,
    "paligemma": Architecture("<image>", "{image}{bos}{text}\n", _paligemma_image_tokens),
}


class HFVisionLanguageEncoder(VisionLanguageEncoder):
    """Hidden states of a local Hugging Face VLM over [image tokens, instruction tokens]."""

    def __init__(self, path: str | Path, image_size: int = 224, frozen: bool = True, hidden_layer: int = -1,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        directory = Path(path)
        if not (directory / "config.json").is_file():
            raise FileNotFoundError(f"no Hugging Face model in {directory} (config.json missing); "
                                    "backbones are loaded from a local directory only")
        config = AutoConfig.from_pretrained(directory, local_files_only=True)
        if config.model_type not in ARCHITECTURES:
            raise ValueError(f"backbone {directory} is a {config.model_type!r} model; supported model types: "
                             f"{', '.join(sorted(ARCHITECTURES))}")
        self.architecture = ARCHITECTURES[config.model_type]
        self.image_processor = AutoImageProcessor.from_pretrained(directory, local_files_only=True)
        self.tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        self.model = AutoModel.from_pretrained(directory, local_files_only=True, dtype=dtype)
        self.config = self.model.config
        self.image_size = image_size
        self.hidden_layer = hidden_layer
        self.frozen = frozen
        self.output_dim = self.config.get_text_config().hidden_size
        self.model.requires_grad_(not frozen)
        if frozen:
            self.model.eval()

    def train(self, mode: bool = True) -> HFVisionLanguageEncoder:
        super().train(mode)
        if self.frozen:
            self.model.eval()
        return self

    def _pixel_inputs(self, images: torch.Tensor) -> dict:
        if images.shape[-2:] != (self.image_size, self.image_size):
            images = torch.nn.functional.interpolate(images.float(), size=(self.image_size, self.image_size),
                                                     mode="bilinear", align_corners=False, antialias=True)
        frames = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return dict(self.image_processor(images=[np.ascontiguousarray(f) for f in frames], return_tensors="pt"))

    def forward(self, images: torch.Tensor, texts: Sequence[str]) -> EncodedTokens:
        if len(texts) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(texts)} texts")
        pixels = self._pixel_inputs(images)
        count = self.architecture.image_token_count(pixels, self.config)
        prompts = [self.architecture.template.format(image=self.architecture.image_token * count, text=text,
                                                     bos=self.tokenizer.bos_token or "") for text in texts]
        tokens = dict(self.tokenizer(prompts, return_tensors="pt", padding=True))
        tokens.update(self.architecture.extra_inputs(tokens["input_ids"], self.config))
        device = next(self.model.parameters()).device
        inputs = {k: v.to(device) for k, v in {**tokens, **pixels}.items()}
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            output = self.model(**inputs, output_hidden_states=True)
        hidden = output.hidden_states[self.hidden_layer]
        return EncodedTokens(hidden.float(), inputs["attention_mask"].bool())

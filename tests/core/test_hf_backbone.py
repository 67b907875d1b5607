"""Hugging Face VLM backbones loaded from local directories (tiny random-weight real architectures)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vla_core.model.batching import Observation
from vla_core.model.hf_backbone import HFVisionLanguageEncoder

from .tiny_hf_models import BUILDERS
from .toy_policies import tiny_config, toy_embodiment

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def backbone_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


def test_tokens_have_the_contract_shape_and_mask_padding(backbone_dir: Path) -> None:
    encoder = HFVisionLanguageEncoder(backbone_dir, image_size=56)
    images = torch.rand(2, 3, 40, 40)
    encoded = encoder(images, ["pick up the red cube please", "go"])
    assert encoded.tokens.shape[0] == 2 and encoded.tokens.shape[2] == encoder.output_dim
    assert encoded.valid[0].sum() > encoded.valid[1].sum()  # the short text is padded
    assert encoded.valid[0].all()


def test_images_and_texts_both_change_the_tokens(backbone_dir: Path) -> None:
    encoder = HFVisionLanguageEncoder(backbone_dir, image_size=56)
    image = torch.rand(1, 3, 56, 56)
    base = encoder(image, ["pick up the red cube"]).tokens
    other_image = encoder(1 - image, ["pick up the red cube"]).tokens
    other_text = encoder(image, ["grab the red cube"]).tokens  # as many tokens as the first text in both tokenizers
    assert other_image.shape == base.shape and other_text.shape == base.shape, "texts of another length are not compared"
    assert (base - other_image).abs().max() > 1e-4
    assert (base - other_text).abs().max() > 1e-4


def test_frozen_by_default_and_trainable_on_request(backbone_dir: Path) -> None:
    assert not any(p.requires_grad for p in HFVisionLanguageEncoder(backbone_dir).parameters())
    assert any(p.requires_grad for p in HFVisionLanguageEncoder(backbone_dir, frozen=False).parameters())


def test_a_policy_runs_on_the_backbone(backbone_dir: Path) -> None:
    from vla_core.model.policy import VLAPolicy

    policy = VLAPolicy(tiny_config(backbone=str(backbone_dir), image_size=32), {"toy": toy_embodiment("toy")})
    chunk = policy.predict_chunk(Observation(np.zeros((48, 48, 3), np.uint8), np.zeros(2)), "push", "toy", seed=0)
    assert chunk.actions.shape == (8, 2) and np.all(np.isfinite(chunk.actions))


def test_unsupported_model_type_and_missing_directory_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no Hugging Face model in .*config.json missing"):
        HFVisionLanguageEncoder(tmp_path / "absent")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="is a 'bert' model; supported model types: paligemma, qwen2_5_vl, qwen2_vl"):
        HFVisionLanguageEncoder(tmp_path)

"""Observations into network batches: image layouts and types, and each malformed input named."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vla_core.model.batching import Observation, image_tensor
from vla_core.normalization import EmbodimentNormalizers

from .toy_policies import toy_embodiment, toy_policy

RNG = np.random.default_rng(0)
IMAGE = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)


def test_channels_last_channels_first_uint8_and_float_images_agree() -> None:
    reference = image_tensor(IMAGE, 16, "main_image")
    assert reference.shape == (3, 16, 16)
    for variant in (IMAGE.transpose(2, 0, 1), IMAGE.astype(np.float32) / 255, IMAGE.transpose(2, 0, 1) / 255.0):
        torch.testing.assert_close(image_tensor(variant, 16, "main_image"), reference)


@pytest.mark.parametrize("image, message", [
    (np.zeros((24, 32), np.uint8),
     r"main_image must be one RGB image, \(H, W, 3\) or \(3, H, W\), got shape \(24, 32\)"),
    (np.zeros((2, 24, 32, 3), np.uint8), r"got shape \(2, 24, 32, 3\)"),
    (np.full((24, 32, 3), 255.0),
     r"main_image is a float image, so its values must be in \[0, 1\]; got range \[255, 255\]"),
    (np.full((24, 32, 3), np.nan), "main_image contains NaN or inf"),
    (np.zeros((24, 32, 3), np.int32), "main_image must be uint8 or float, got dtype int32"),
])
def test_malformed_images_are_named(image: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        image_tensor(image, 16, "main_image")


def test_wrist_views_fill_their_slots_and_unknown_cameras_are_refused() -> None:
    spec = toy_embodiment("toy", wrist_cameras=1)
    policy = toy_policy([spec])
    chunk = policy.predict_chunk(Observation(IMAGE, np.zeros(2), {"wrist0": IMAGE}), "push", "toy", seed=0)
    without_wrist = policy.predict_chunk(Observation(IMAGE, np.zeros(2)), "push", "toy", seed=0)
    assert np.abs(chunk.actions - without_wrist.actions).max() > 1e-6  # the wrist view is read
    unknown = r"wrist images \['gripper_cam'\] are not wrist cameras of toy \(\['wrist0'\]\)"
    with pytest.raises(ValueError, match=unknown):
        policy.predict_chunk(Observation(IMAGE, np.zeros(2), {"gripper_cam": IMAGE}), "push", "toy")
    with pytest.raises(ValueError, match="state of toy contains NaN or inf"):
        policy.predict_chunk(Observation(IMAGE, np.array([0.0, np.nan])), "push", "toy")


def test_an_embodiment_the_configuration_cannot_hold_is_refused() -> None:
    policy = toy_policy([])  # max_wrist_views=1, max_action_dim=4, horizon=8
    with pytest.raises(ValueError, match=r"has 2 wrist cameras; this policy has 1 wrist view slots"):
        policy.add_embodiment(toy_embodiment("two_wrists", wrist_cameras=2), EmbodimentNormalizers.identity(2, 2))
    with pytest.raises(ValueError, match="has 5 action and 5 state channels; this policy holds at most 4 and 3"):
        policy.add_embodiment(toy_embodiment("big", joints=5), EmbodimentNormalizers.identity(5, 5))
    with pytest.raises(ValueError, match=r"statistics for toy have 3 action and 2 state channels, expected 2 and 2"):
        policy.add_embodiment(toy_embodiment("toy"), EmbodimentNormalizers.identity(3, 2))


def test_a_batch_of_observations_gives_one_chunk_each_with_its_metadata() -> None:
    policy = toy_policy([toy_embodiment("toy")])
    observations = [Observation(IMAGE, np.zeros(2)), Observation(255 - IMAGE, np.ones(2))]
    chunks = policy.predict_chunks(observations, ["push", "pull"], "toy", seed=3)
    alone = policy.predict_chunk(observations[0], "push", "toy", seed=3)
    assert [c.actions.shape for c in chunks] == [(8, 2), (8, 2)]
    assert chunks[0].embodiment == "toy" and chunks[0].channel_names == ("arm/j0", "arm/j1")
    assert chunks[0].encode_seconds > 0 and chunks[0].denoise_seconds > 0
    assert np.abs(chunks[0].actions - chunks[1].actions).max() > 1e-6
    assert alone.actions.shape == (8, 2)
    with pytest.raises(ValueError, match="2 observations but 1 instructions"):
        policy.predict_chunks(observations, ["push"], "toy")

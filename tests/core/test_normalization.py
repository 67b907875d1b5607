"""Quantile and mean/std normalisation: mapping, clamping, exact inverse, masks, serialisation."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vla_core.normalization import Normalizer

RNG = np.random.default_rng(0)
DATA = np.stack([RNG.normal(3.0, 2.0, 5000), RNG.uniform(-1, 5, 5000), np.full(5000, 7.0)], axis=1)


def test_quantile_maps_q01_and_q99_to_the_unit_interval_and_clamps_outliers() -> None:
    norm = Normalizer.fit(DATA, "quantile")
    q01, q99 = np.quantile(DATA[:, 0], [0.01, 0.99])
    np.testing.assert_allclose(norm.normalize(np.array([[q01, 0, 7], [q99, 0, 7]]))[:, 0], [-1, 1], atol=1e-12)
    assert norm.normalize(np.array([[1e6, 0, 7]]))[0, 0] == 1.0
    scaled = norm.normalize(DATA)
    assert scaled.min() >= -1 and scaled.max() <= 1


def test_inverse_is_exact_inside_the_range_and_constant_channels_survive() -> None:
    for kind in ("quantile", "mean_std"):
        norm = Normalizer.fit(DATA, kind)
        inside = DATA[(DATA[:, 0] > norm.low[0]) & (DATA[:, 0] < norm.high[0])] if kind == "quantile" else DATA
        if kind == "quantile":
            inside = inside[(inside[:, 1] > norm.low[1]) & (inside[:, 1] < norm.high[1])]
        np.testing.assert_allclose(norm.denormalize(norm.normalize(inside)), inside, atol=1e-9)
        assert np.all(np.isfinite(norm.normalize(DATA)[:, 2]))


def test_a_rate_is_scaled_by_the_slope_without_offset_or_clamp() -> None:
    for kind in ("quantile", "mean_std"):
        norm = Normalizer.fit(DATA, kind, passthrough=[False, True, False])
        point, step = np.array([3.0, 2.0, 7.0]), np.array([1e-3, 1e-3, 1e-3])
        slope = (norm.normalize(point + step) - norm.normalize(point)) / step
        rate = np.array([50.0, -50.0, 50.0])  # far past the clamp if it were a position
        expected = [slope[0] * 50.0, -50.0, 0.0 if kind == "quantile" else 50.0]  # constant channel: no slope
        np.testing.assert_allclose(norm.scale_rate(rate), expected, rtol=1e-6)
        torch.testing.assert_close(norm.scale_rate(torch.tensor(rate)), torch.tensor(norm.scale_rate(rate)))


def test_masked_entries_do_not_affect_the_statistics() -> None:
    corrupted = DATA.copy()
    corrupted[:100, 0] = 1e9
    mask = np.ones_like(corrupted, dtype=bool)
    mask[:100, 0] = False
    masked = Normalizer.fit(corrupted, "quantile", mask=mask)
    np.testing.assert_allclose(masked.low[0], np.quantile(DATA[100:, 0], 0.01))
    np.testing.assert_allclose(masked.high[0], np.quantile(DATA[100:, 0], 0.99))
    np.testing.assert_allclose(masked.high[1:], Normalizer.fit(DATA, "quantile").high[1:])


def test_torch_tensors_keep_dtype_and_passthrough_channels_are_untouched() -> None:
    norm = Normalizer.fit(DATA, "quantile", passthrough=[False, True, False])
    x = torch.tensor(DATA[:10], dtype=torch.float32)
    y = norm.normalize(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y[:, 1], x[:, 1])
    np.testing.assert_allclose(y.numpy(), norm.normalize(DATA[:10]), atol=1e-5)


def test_dict_round_trip_through_json() -> None:
    norm = Normalizer.fit(DATA, "mean_std", passthrough=[False, False, True])
    back = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    np.testing.assert_array_equal(back.normalize(DATA), norm.normalize(DATA))
    with pytest.raises(ValueError, match=r"miss the fields \['high'\]"):
        Normalizer.from_dict({"kind": "quantile", "low": [0], "passthrough": [False]})


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="unknown normalisation kind 'minmax'"):
        Normalizer.fit(DATA, "minmax")
    with pytest.raises(ValueError, match="normaliser has 3 channels, got data with 2"):
        Normalizer.fit(DATA).normalize(np.zeros((1, 2)))

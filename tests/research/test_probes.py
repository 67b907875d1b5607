"""The grounding probes' ridge regression: it finds a position that is in the features and
reports no better than the mean when it is not (the README's diagnosis rests on both)."""
from __future__ import annotations

import numpy as np

from research.probe_vision import ridge_rmse


def test_ridge_probe_recovers_a_position_encoded_in_the_features() -> None:
    rng = np.random.default_rng(0)
    positions = rng.uniform(-0.1, 0.1, size=(300, 2))
    features = np.hstack([positions @ rng.normal(size=(2, 40)), rng.normal(size=(300, 400))])
    probe, mean = ridge_rmse(features, positions)
    assert probe < 0.1 * mean, (probe, mean)


def test_ridge_probe_is_no_better_than_the_mean_without_the_position() -> None:
    rng = np.random.default_rng(1)
    positions = rng.uniform(-0.1, 0.1, size=(300, 2))
    probe, mean = ridge_rmse(rng.normal(size=(300, 400)), positions)
    assert probe > 0.9 * mean, (probe, mean)

"""Simulation scene seeds: the range each use draws from, defined here once, never overlapping.

A seed fixes a simulated scene (where the cubes are, which one is named, the wording drawn).
Keeping the uses apart means no scene a policy is selected or evaluated on was ever trained on,
and a probe never measures on views the model was fitted to. Import these ranges rather than
writing the numbers; `check_disjoint` (run by the tests) keeps them apart.

| range | use |
| --- | --- |
| 0-999 | scripted demonstrations (`vla collect --seed 0`) |
| 1000-4999 | demonstrations collected with DART noise (`vla collect --dart-noise`) |
| 5000-9999 | recovery episodes (`vla collect --recover-with`, DAgger-style) |
| 10000-19999 | evaluation (`vla eval`, the reported success rates) |
| 20000-29999 | selection: choosing settings and checkpoints, and the grounding probe |
| 30000-39999 | rendered views that train and validate the keypoint head |
| 40000-49999 | research probes of the encoder's features (`research/probe_vision.py`) |
"""
from __future__ import annotations

DEMONSTRATIONS = range(1_000)  # seeds 0-999
DART = range(1_000, 5_000)
RECOVERY = range(5_000, 10_000)
EVALUATION = range(10_000, 20_000)
SELECTION = range(20_000, 30_000)
KEYPOINT_VIEWS = range(30_000, 40_000)
FEATURE_PROBES = range(40_000, 50_000)

RANGES: dict[str, range] = {
    "demonstrations": DEMONSTRATIONS, "dart": DART, "recovery": RECOVERY, "evaluation": EVALUATION,
    "selection": SELECTION, "keypoint views": KEYPOINT_VIEWS, "feature probes": FEATURE_PROBES,
}


def check_disjoint(ranges: dict[str, range] = RANGES) -> None:
    """Raise ValueError naming the first two ranges that share a seed."""
    ordered = sorted(ranges.items(), key=lambda item: item[1].start)
    for (name, first), (next_name, second) in zip(ordered, ordered[1:]):
        if first.stop > second.start:
            raise ValueError(f"seed ranges overlap: {name} {first.start}-{first.stop - 1} and "
                             f"{next_name} {second.start}-{second.stop - 1}")


def use_of(seed: int) -> str | None:
    """The use whose range holds `seed`, or None."""
    return next((name for name, seeds in RANGES.items() if seed in seeds), None)

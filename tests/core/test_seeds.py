"""Scene seeds: each use has one range, defined once in vla_core.seeds, and none overlap."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from vla_core import seeds
from vla_core.evaluation import EVAL_SEED_BASE
from vla_core.training.config import TrainConfig

from research import probe_grounding, probe_vision

ROOT = Path(__file__).resolve().parents[2]


def test_the_ranges_do_not_overlap_and_an_overlap_is_named() -> None:
    seeds.check_disjoint()
    assert sum(len(r) for r in seeds.RANGES.values()) == len(set().union(*seeds.RANGES.values()))
    with pytest.raises(ValueError, match="dart 1000-4999 and recovery 4000-9999"):
        seeds.check_disjoint({"dart": seeds.DART, "recovery": range(4_000, 10_000)})
    assert seeds.use_of(0) == "demonstrations" and seeds.use_of(10_000) == "evaluation"
    assert seeds.use_of(seeds.KEYPOINT_VIEWS.start) == "keypoint views"


def test_every_use_reads_its_range() -> None:
    assert EVAL_SEED_BASE == seeds.EVALUATION.start
    config = TrainConfig()
    keypoint_views = range(config.keypoint_seed, config.keypoint_seed + config.keypoint_placements
                           + config.keypoint_validation)
    assert keypoint_views.start in seeds.KEYPOINT_VIEWS and keypoint_views[-1] in seeds.KEYPOINT_VIEWS
    assert probe_grounding.PROBE_SEED_BASE == seeds.SELECTION.start
    assert probe_vision.PROBE_SEED_BASE == seeds.FEATURE_PROBES.start


def test_no_source_writes_a_range_start_as_a_literal() -> None:
    """The starts (10000, 20000, ...) appear on no line about seeds outside vla_core/seeds.py."""
    starts = "|".join(f"{r.start}|{r.start:_}" for r in seeds.RANGES.values() if r.start >= 5_000)
    pattern = re.compile(rf"(?<![\w.]){'(?:' + starts + ')'}(?![\w.])")
    sources = [*(ROOT / "src" / "vla_core" / "vla_core").rglob("*.py"), *(ROOT / "research").rglob("*.py"),
               *(ROOT / "scripts").glob("*.py")]
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}" for path in sources if path.name != "seeds.py"
             for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line) and "seed" in line.lower()]
    assert not found, "\n".join(found)

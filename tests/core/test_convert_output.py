"""The dataset `vla convert` writes is exactly the recorded one (tests/core/data/convert_golden.json,
see tests/core/convert_golden.py), whether the bags go through one process or several: the
converter's speed work (vectorised reads, parallel decoding and encoding) must not change a value,
a frame or a statistic. A bad bag among them is reported and the others kept."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.core.convert_golden import GOLDEN, convert_and_digest


@pytest.mark.parametrize("workers", [1, 2])
def test_the_dataset_is_the_recorded_one(workers: int, tmp_path: Path) -> None:
    result, reports = convert_and_digest(tmp_path, workers)
    assert [(Path(report.bag).name, report.kept) for report in reports] == [
        ("a_robot", True), ("b_gap", False), ("c_sqlite", True)]
    assert "gap(s) inside the episode" in reports[1].reason
    golden = json.loads(GOLDEN.read_text())
    assert sorted(result) == sorted(golden)
    for name, value in golden.items():
        assert result[name] == value, f"{name} differs from the recorded conversion"

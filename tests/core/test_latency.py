from __future__ import annotations

import pytest

from vla_core.runtime.latency import LatencyWindow


def test_summary_over_the_window_only() -> None:
    window = LatencyWindow(size=4)
    assert window.summary().count == 0
    for value in (10.0, 0.01, 0.02, 0.03, 0.04):
        window.add(value)
    summary = window.summary()
    assert summary.count == 4 and summary.maximum == 0.04 and summary.last == 0.04
    assert summary.median == pytest.approx(0.025) and summary.mean == pytest.approx(0.025)
    assert 0.03 < summary.p95 <= 0.04


@pytest.mark.parametrize("bad", [-0.1, float("nan")])
def test_bad_latencies_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="non-negative number of seconds"):
        LatencyWindow().add(bad)

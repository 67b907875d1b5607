"""Observation assembly: nearest stamp per stream, and stale or missing streams named."""
from __future__ import annotations

import pytest

from vla_core.runtime.observation_sync import ObservationAssembler


def test_takes_the_nearest_sample_of_each_stream() -> None:
    assembler = ObservationAssembler(["main", "wrist", "joints"], staleness_limit=0.05)
    for i in range(30):
        assembler.add("main", i / 30, f"main{i}")
    for i in range(100):
        assembler.add("joints", i / 100, f"joints{i}")
    for i in range(10):
        assembler.add("wrist", i / 10 + 0.004, f"wrist{i}")
    observation = assembler.assemble(0.51)
    assert observation.complete, observation.problems
    assert observation.samples["main"].data == "main15"  # 0.5 is nearest to 0.51
    assert observation.samples["joints"].data == "joints51"
    assert observation.samples["wrist"].data == "wrist5"


def test_a_stale_stream_is_named_with_its_age() -> None:
    assembler = ObservationAssembler(["main", "joints"], staleness_limit=0.1)
    assembler.add("main", 1.0, "image")
    assembler.add("joints", 0.5, "q")
    observation = assembler.assemble(1.0)
    assert not observation.complete
    assert observation.problems == ["joints: nearest message is 0.500 s from the observation time (limit 0.100 s)"]
    assert "main" in observation.samples


def test_a_missing_stream_is_named() -> None:
    assembler = ObservationAssembler(["main", "wrist"], staleness_limit=0.1)
    assembler.add("main", 1.0, "image")
    assert assembler.assemble(1.0).problems == ["wrist: no message received yet"]
    assert assembler.latest_common_stamp() is None


def test_out_of_order_samples_are_kept_in_stamp_order() -> None:
    assembler = ObservationAssembler(["joints"], staleness_limit=0.02)
    for stamp in (0.3, 0.1, 0.2, 0.5, 0.4):
        assembler.add("joints", stamp, stamp)
    assert [assembler.assemble(t).samples["joints"].data for t in (0.1, 0.2, 0.3, 0.4, 0.5)] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert assembler.latest_common_stamp() == 0.5


def test_unknown_stream_and_bad_limit_are_refused() -> None:
    assembler = ObservationAssembler(["main"], staleness_limit=0.1)
    with pytest.raises(KeyError, match="unknown stream 'wrist'; streams are \\['main'\\]"):
        assembler.add("wrist", 0.0, None)
    with pytest.raises(ValueError, match="staleness_limit must be > 0"):
        ObservationAssembler(["main"], staleness_limit=0)


def test_the_earlier_sample_one_interval_before_the_chosen_one_is_kept_for_the_velocity() -> None:
    assembler = ObservationAssembler(["main", "joints"], staleness_limit=0.05)
    assembler.add("main", 1.0, "image")
    for i in range(90, 101):  # joint states at 100 Hz
        assembler.add("joints", i / 100, i)
    observation = assembler.assemble(1.0, earlier={"joints": 1 / 30})
    assert observation.complete, observation.problems
    assert observation.samples["joints"].data == 100
    assert observation.earlier["joints"].data == 97  # 0.967 s is nearest 1.0 - 1/30
    assert "main" not in observation.earlier
    assert assembler.assemble(1.0).earlier == {}


def test_a_joint_stream_slower_than_the_interval_gives_the_older_sample_not_the_same_one() -> None:
    assembler = ObservationAssembler(["joints"], staleness_limit=0.15)
    for stamp in (0.8, 0.9, 1.0):  # 10 Hz joint states, a 30 Hz control period
        assembler.add("joints", stamp, stamp)
    observation = assembler.assemble(1.0, earlier={"joints": 1 / 30})
    assert observation.samples["joints"].data == 1.0 and observation.earlier["joints"].data == 0.9


def test_no_earlier_sample_is_named_and_makes_the_observation_incomplete() -> None:
    assembler = ObservationAssembler(["joints"], staleness_limit=0.05)
    assembler.add("joints", 1.0, "first")
    observation = assembler.assemble(1.0, earlier={"joints": 0.02})
    assert not observation.complete
    assert observation.problems == ["joints: no message about 0.020 s before the chosen one, which the velocity "
                                    "is measured from (none; limit 0.050 s)"]
    assembler.add("joints", 0.5, "old")
    assert "the nearest is 0.500 s before it" in assembler.assemble(1.0, earlier={"joints": 0.02}).problems[0]


def test_assembled_at_the_cameras_capture_stamp_with_the_joints_measured_then() -> None:
    """A camera 100 ms late: the observation is stamped when its newest frame was captured, and
    the joints are the ones measured then, not the fresher ones (what training paired)."""
    assembler = ObservationAssembler(["front", "joints"], staleness_limit=0.2)
    for k in range(50):  # joints at 100 Hz up to t = 1.49
        assembler.add("joints", 1.0 + k * 0.01, f"joints@{1.0 + k * 0.01:.2f}")
    assembler.add("front", 1.30, "frame captured at 1.30")  # arrives at 1.40
    assembled = assembler.assemble_at_newest("front", now=1.49)
    assert assembled.complete and assembled.stamp == 1.30
    assert assembled.samples["joints"].data == "joints@1.30"
    stale = assembler.assemble_at_newest("front", now=1.61)
    assert not stale.complete and "front: newest message is 0.310 s old (limit 0.200 s)" in stale.problems
    assert assembler.assemble_at_newest("joints", now=1.5).stamp == pytest.approx(1.49)
    empty = ObservationAssembler(["front"], 0.2).assemble_at_newest("front", now=1.0)
    assert empty.problems == ["front: no message received yet"]

"""The executor's safety filter: each cause detected, counted once per event, logged once."""
from __future__ import annotations

import numpy as np
import pytest

from vla_core.runtime.safety import JointLimits, LimitPolicy, SafetyFilter, Watchdog, WorkspaceBox

LIMITS = JointLimits(("a", "b"), lower=np.array([-1.0, -2.0]), upper=np.array([1.0, 2.0]),
                     velocity=np.array([1.0, 2.0]))
DT = 0.1  # so the largest steps are 0.1 and 0.2


def make(policy=LimitPolicy.CLAMP, **kwargs) -> SafetyFilter:
    return SafetyFilter(LIMITS, DT, policy, **kwargs)


def test_a_safe_target_passes_unchanged() -> None:
    verdict = make().check(np.array([0.05, -0.1]), previous=np.zeros(2))
    np.testing.assert_array_equal(verdict.command, [0.05, -0.1])
    assert verdict.causes == []


def test_position_limits_clamp_or_reject() -> None:
    previous = np.array([0.95, 0.0])
    clamped = make().check(np.array([1.05, 0.0]), previous)
    np.testing.assert_allclose(clamped.command, [1.0, 0.0])
    assert clamped.causes == ["joint_position_limit"]
    rejected = make(LimitPolicy.REJECT).check(np.array([1.05, 0.0]), previous)
    assert rejected.command is None and rejected.causes == ["joint_position_limit"]


def test_velocity_limits_clamp_each_joint_to_its_step() -> None:
    verdict = make().check(np.array([0.5, -0.5]), previous=np.zeros(2))
    np.testing.assert_allclose(verdict.command, [0.1, -0.2])
    assert verdict.causes == ["joint_velocity_limit"]
    assert make(LimitPolicy.REJECT).check(np.array([0.5, 0.0]), np.zeros(2)).command is None


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_targets_are_never_forwarded(bad: float) -> None:
    verdict = make().check(np.array([0.0, bad]), previous=np.zeros(2))
    assert verdict.command is None and verdict.causes == ["non_finite_target"]


def test_a_large_jump_is_rejected_even_when_clamping() -> None:
    verdict = make(max_jump=0.3).check(np.array([0.9, 0.0]), previous=np.zeros(2))
    assert verdict.command is None and verdict.causes == ["max_jump"]


def test_end_effector_outside_the_workspace_box_is_rejected() -> None:
    box = WorkspaceBox(lower=np.array([-0.5, -0.5, 0.0]), upper=np.array([0.5, 0.5, 0.6]))
    safety = make(workspace=box)
    assert safety.check(np.zeros(2), np.zeros(2), eef_positions=np.array([[0.2, 0.0, 0.3]])).command is not None
    verdict = safety.check(np.zeros(2), np.zeros(2), eef_positions=np.array([[0.2, 0.0, -0.01]]))
    assert verdict.command is None and verdict.causes == ["workspace"]


def test_causes_are_counted_every_time_but_first_reported_once() -> None:
    safety = make()
    verdicts = [safety.check(np.array([np.nan, 0.0]), np.zeros(2)) for _ in range(5)]
    assert safety.counts["non_finite_target"] == 5
    assert [v.first_occurrences for v in verdicts] == [["non_finite_target"], [], [], [], []]


def test_wrong_target_shape_and_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match=r"target has shape \(3,\), expected \(2,\)"):
        make().check(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="lower limit above upper limit for joints \\['a'\\]"):
        JointLimits(("a",), np.array([1.0]), np.array([0.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="dt must be > 0"):
        SafetyFilter(LIMITS, 0.0)


def test_watchdog_names_quiet_streams() -> None:
    watchdog = Watchdog({"joint_states": 0.2, "chunks": 1.0})
    assert watchdog.expired(0.0) == ["joint_states (never received)", "chunks (never received)"]
    watchdog.feed("joint_states", 1.0)
    watchdog.feed("chunks", 1.0)
    assert watchdog.expired(1.1) == []
    assert watchdog.expired(1.5) == ["joint_states (0.50 s > 0.20 s)"]
    with pytest.raises(KeyError, match="unknown watchdog stream 'camera'"):
        watchdog.feed("camera", 0.0)



@pytest.mark.parametrize("bad_row, why", [
    ([0.75, 0.68], "workspace"),  # within every joint limit and step, outside the box (y <= 0.65)
    ([0.75, 0.05], "max_jump"),  # a step of 0.35 > max_jump 0.3, within the velocity step of 1.0
    ([1.02, 0.4], "joint_position_limit"),  # would be clamped: not the row the policy asked for
    ([0.75, np.nan], "non_finite_target"),
])
def test_rows_sent_ahead_stop_before_the_first_row_any_check_would_touch(bad_row: list[float], why: str) -> None:
    """A controller executes the rows sent ahead if the executor dies: each passes the filter that
    its own tick would apply, workspace box and max_jump included, and nothing is counted twice."""
    safety = SafetyFilter(LIMITS, 0.5, LimitPolicy.CLAMP, max_jump=np.array([0.3, 0.3]),
                          workspace=WorkspaceBox(np.array([-2.0, -2.0]), np.array([2.0, 0.65])))
    def eef(joints: np.ndarray) -> np.ndarray:  # a stand-in "end effector" at the joint values
        return joints[None]

    rows = np.array([[0.5, 0.2], [0.75, 0.4], bad_row, [0.75, 0.4]])
    assert safety.evaluate(rows[2], rows[1], eef(rows[2]))[1] == [why], "the row trips exactly this check"
    sent = safety.admissible_rows(rows, np.array([0.3, 0.0]), eef)
    np.testing.assert_array_equal(sent, rows[:2])
    assert not safety.counts, "rows sent ahead are counted when their own tick checks them"
    np.testing.assert_array_equal(safety.admissible_rows(rows[:2], np.array([0.3, 0.0]), eef), rows[:2])

"""ActionChunk validation: a consistent chunk decodes; each inconsistency is named."""
from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Duration

from vla_msgs.msg import ActionChunk
from vla_policy_node.chunk_messages import ChunkMessageError, array_to_pose, chunk_from_message
from vla_policy_node.ros_time import seconds_to_duration, seconds_to_stamp, stamp_to_seconds


def chunk(**overrides) -> ActionChunk:
    msg = ActionChunk(
        chunk_id=3, embodiment="so101", action_space="joint_abs", horizon=2, dims=3,
        channel_names=["a", "b", "c"], target_names=["a", "b", "c"], dt=Duration(nanosec=20_000_000),
        data=[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], chunk_start_poses=[array_to_pose([1, 2, 3, 0, 0, 0, 1])],
        prefix_length=1,
    )
    msg.header.stamp = seconds_to_stamp(12.5)
    for key, value in overrides.items():
        setattr(msg, key, value)
    return msg


def test_a_consistent_chunk_decodes() -> None:
    received = chunk_from_message(chunk())
    np.testing.assert_array_equal(received.actions, [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(received.start_poses, [[1, 2, 3, 0, 0, 0, 1]])
    assert received.stamp == 12.5 and received.dt == pytest.approx(0.02) and received.prefix_length == 1


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"data": [0.0] * 5}, "data has 5 values, expected horizon x dims = 2 x 3"),
        ({"channel_names": ["a"]}, "channel_names has 1 names, expected dims = 3"),
        ({"data": [0.0, float("nan"), 0, 0, 0, 0]}, "data contains NaN or inf"),
        ({"horizon": 0, "data": []}, "horizon and dims must be >= 1"),
        ({"dt": Duration()}, "dt must be > 0"),
        ({"prefix_length": 3}, "prefix_length 3 is not in 0..2"),
        ({"chunk_start_poses": [array_to_pose([float("inf"), 0, 0, 0, 0, 0, 1])]}, "chunk_start_poses or chunk_start_positions contain NaN or inf"),
    ],
)
def test_each_inconsistency_is_named(overrides, error) -> None:
    with pytest.raises(ChunkMessageError, match=f"chunk 3: {error}".replace("(", r"\(").replace(")", r"\)")):
        chunk_from_message(chunk(**overrides))


def test_time_conversions_round_trip_and_refuse_negative() -> None:
    assert stamp_to_seconds(seconds_to_stamp(1234.000000001)) == pytest.approx(1234.000000001, abs=1e-9)
    assert seconds_to_duration(0.5) == Duration(sec=0, nanosec=500_000_000)
    with pytest.raises(ValueError, match="non-negative"):
        seconds_to_stamp(-1.0)

"""The dataset `vla convert` writes is exactly the recorded one (tests/core/data/convert_golden.json,
see tests/core/convert_golden.py), whether the bags go through one process or several: the
converter's speed work (vectorised reads, parallel decoding and encoding) must not change a value,
a frame or a statistic. A bad bag among them is reported and the others kept."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
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


def with_broken_image(source: Path, target: Path, topic: str, number: int) -> Path:
    """`source` copied to `target` with message `number` of `topic` (a CompressedImage) made undecodable."""
    from rosbags.rosbag2 import Reader, Writer
    from vla_core.data.bag_reader import open_bag

    from tests.core.bag_factory import COMPRESSED, TYPESTORE

    bag = open_bag(source)
    custom = bag.custom_data
    bag.close()
    with Reader(source) as reader, Writer(target, version=9) as writer:
        connections = {c.id: writer.add_connection(c.topic, c.msgtype, typestore=TYPESTORE) for c in reader.connections}
        for key, value in {**custom, "vla_ros.episode_id": "ep-broken"}.items():
            writer.set_custom_data(key, value)
        seen = 0
        for connection, stamp, raw in reader.messages():
            if connection.topic == topic:
                if seen == number:
                    msg = TYPESTORE.deserialize_cdr(raw, COMPRESSED)
                    msg.data = np.frombuffer(b"not a jpeg at all", np.uint8)
                    raw = TYPESTORE.serialize_cdr(msg, COMPRESSED)
                seen += 1
            writer.write(connections[connection.id], stamp, raw)
    return target


@pytest.mark.parametrize("workers", [1, 2])
def test_an_undecodable_frame_skips_its_episode_only(workers: int, tmp_path: Path) -> None:
    """A camera message that does not decode, found by its camera's decoding thread, names the
    camera, topic and message; the episode's clips are deleted and the other bags are kept."""
    from vla_core.data.convert_config import ConvertConfig
    from vla_core.data.lerobot_v3 import load_episodes
    from vla_core.data.rosbag_convert import convert_bags

    from tests.core.convert_golden import spec, write_bags

    good, _, other = write_bags(tmp_path / "bags")
    broken = with_broken_image(good, tmp_path / "bags" / "d_broken", "/wrist/image_raw/compressed", 7)
    summary = convert_bags([good, broken, other], spec(), ConvertConfig(), tmp_path / "dataset", workers=workers)
    assert [report.kept for report in summary.reports] == [True, False, True]
    assert "camera 'wrist' on /wrist/image_raw/compressed, message 7" in summary.reports[1].reason
    assert "does not decode" in summary.reports[1].reason
    assert [episode.name for episode in load_episodes(tmp_path / "dataset")] == ["ep-robot", "c_sqlite"]
    assert not list((tmp_path / "dataset").glob(".clips-*"))

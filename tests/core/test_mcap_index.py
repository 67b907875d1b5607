"""Reading MCAP files through their message index (`vla_core.data.mcap_index`, issue 36) gives what
rosbags gives, message for message and in the same order, and files it cannot serve (compressed
chunks, a damaged index) are read by rosbags instead."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from vla_core.data.bag_reader import open_bag
from vla_core.data.mcap_index import open_indexed

from tests.core.bag_factory import BagSpec, write_bag

FIXTURES = Path(__file__).parent / "data" / "rosbag2"
CAMERAS = {"front": "/front/image_raw", "wrist": "/wrist/image_raw/compressed"}


def _rosbags_messages(path: Path, topics: set[str]) -> list[tuple[str, int, bytes, str]]:
    """Every storage file's messages as rosbags' own MCAP reader yields them."""
    bag = open_bag(path)
    try:
        found = []
        for reader in bag.readers:
            storage = reader.storage
            for part in getattr(storage, "storages", [storage]):
                wanted = [c for c in part.connections if c.topic in topics]
                if wanted:
                    found += [(c.topic, t, bytes(raw), c.msgtype) for c, t, raw in part.messages(wanted)]
        return found
    finally:
        bag.close()


def _indexed_messages(path: Path, topics: set[str], heads: frozenset[str] = frozenset(), head_bytes: int = 0
                      ) -> tuple[list[tuple[str, int, bytes, str]], list[bool]]:
    bag = open_bag(path)
    try:
        messages = [(topic, t, bytes(raw), msgtype) for topic, t, raw, msgtype in bag.raw_messages(topics, heads, head_bytes)]
        storages = [part for reader in bag.readers for part in getattr(reader.storage, "storages", [reader.storage])]
        return messages, [open_indexed(part) is not None for part in storages]
    finally:
        bag.close()


@pytest.fixture(scope="module")
def robot_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two cameras (raw at 30 Hz, JPEG at 15 Hz), joint states at 250 Hz and commands: chunks hold all of them."""
    return write_bag(tmp_path_factory.mktemp("bags") / "robot", BagSpec(
        ("a", "b", "c"), {"front": "front/image_raw", "wrist": "wrist/image_raw"}, seconds=1.5, joint_hz=250.0,
        command_hz=100.0, camera_encodings={"wrist": "jpeg"}, camera_rates={"wrist": 15.0}, textured=True))


def test_a_robot_bag_reads_through_its_index_as_rosbags_reads_it(robot_bag: Path) -> None:
    everything = {"/joint_states", "/joint_trajectory_controller/joint_trajectory", *CAMERAS.values()}
    expected = _rosbags_messages(robot_bag, everything)
    assert len({topic for topic, *_ in expected}) == 4
    for topics in (everything, {CAMERAS["wrist"], "/joint_states"}):
        messages, indexed = _indexed_messages(robot_bag, topics)
        assert indexed == [True]
        assert messages == [message for message in expected if message[0] in topics]
    # camera heads: the first 12 bytes (encapsulation and header stamp) of camera messages only
    messages, _ = _indexed_messages(robot_bag, everything, frozenset(CAMERAS.values()), 12)
    assert [(topic, t, msgtype) for topic, t, _, msgtype in messages] == [(m[0], m[1], m[3]) for m in expected]
    for (topic, _, raw, _), (_, _, full, _) in zip(messages, expected):
        assert raw == (full[:12] if topic in CAMERAS.values() else full)


def test_a_damaged_index_and_compressed_chunks_are_read_by_rosbags(robot_bag: Path, tmp_path: Path) -> None:
    damaged = shutil.copytree(robot_bag, tmp_path / "damaged")
    mcap = next(damaged.glob("*.mcap"))
    bag = open_bag(damaged)
    storage = bag.readers[0].storage.storages[0]
    index_at = next(iter(storage.chunks[0].message_index_offsets.values()))
    bag.close()
    data = bytearray(mcap.read_bytes())
    data[index_at] = 0x00  # a MessageIndex record's opcode
    mcap.write_bytes(bytes(data))
    topics = {"/joint_states", "/joint_trajectory_controller/joint_trajectory", *CAMERAS.values()}
    messages, indexed = _indexed_messages(damaged, topics)
    assert indexed == [True] and messages == _rosbags_messages(robot_bag, topics)  # located nothing, fell back

    zstd = FIXTURES / "mcap_reindex_test_bags_multiple_files"  # real rosbag2 files, zstd chunks
    topics = {topic for topic in open_bag(zstd).topics}
    messages, indexed = _indexed_messages(zstd, topics)
    assert indexed == [False, False, False] and messages == _rosbags_messages(zstd, topics) and messages
    plain = FIXTURES / "mcap_cdr_test"  # a real rosbag2 file with uncompressed chunks
    topics = {topic for topic in open_bag(plain).topics}
    messages, indexed = _indexed_messages(plain, topics)
    assert indexed == [True] and messages == _rosbags_messages(plain, topics) and messages


@pytest.mark.parametrize("stamps", ["header", "receive"])
def test_pass_1_from_gathered_arrays_is_pass_1_message_by_message(robot_bag: Path, stamps: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The converter's first pass reads an indexed file's topics as arrays (`Bag.indexed_messages`,
    `IndexedMcap.gather`): the same stamps, ordinals and joint rows as reading each message."""
    from vla_core.data.bag_reader import Bag
    from vla_core.data.convert_config import ConvertConfig
    from vla_core.data.rosbag_convert import JOINT_BLOCK, _read_streams, resolve_topics
    from vla_core.embodiment import load_embodiment

    spec = load_embodiment("so101")
    path = write_bag(robot_bag.parent / f"so101_{stamps}", BagSpec(
        spec.joint_names, {camera.name: camera.topic for camera in spec.cameras}, seconds=1.0, joint_hz=500.0,
        command_hz=100.0, camera_encodings={"wrist": "jpeg"}, camera_rates={"wrist": 15.0}))
    config = ConvertConfig(stamps=stamps).resolved(spec)
    monkeypatch.setattr("vla_core.data.rosbag_convert.JOINT_BLOCK", 64)  # several blocks per topic
    assert JOINT_BLOCK > 64

    def streams() -> dict:
        bag = open_bag(path)
        try:
            return _read_streams(bag, resolve_topics(bag, spec, config), spec, config)
        finally:
            bag.close()

    gathered = streams()
    monkeypatch.setattr(Bag, "indexed_messages", lambda self, topics: None)
    one_by_one = streams()
    assert gathered.keys() == one_by_one.keys() == {"camera:front", "camera:wrist", "joint_states", "command"}
    for role, stream in gathered.items():
        assert stream.stamps == one_by_one[role].stamps and stream.ordinals == one_by_one[role].ordinals, role
        assert [s.dtype for s in stream.sorted() if s is not None] == [
            s.dtype for s in one_by_one[role].sorted() if s is not None]
        for ours, theirs in zip(stream.sorted(), one_by_one[role].sorted()):
            assert (ours is None and theirs is None) or (ours == theirs).all(), role

"""The policy backend interface (vla_core.backends): what the node and `vla eval` run policies through."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vla_core.backends import BackendError, PolicyBackend, backend_kind, load_backends
from vla_core.embodiment import load_embodiment
from vla_core.model.batching import Observation
from vla_core.model.policy import VLAPolicy


@pytest.fixture(scope="module")
def bringup(tmp_path_factory):
    from vla_core.bringup_checkpoint import write_initial_checkpoint

    return str(write_initial_checkpoint(["so101"], tmp_path_factory.mktemp("bringup") / "ckpt"))


def _observation(spec, rng: np.random.Generator) -> Observation:
    images = {c.name: rng.integers(0, 256, (c.height, c.width, 3), dtype=np.uint8) for c in spec.cameras}
    state = rng.uniform(-0.5, 0.5, spec.state_dim)
    from vla_core.kinematics import RobotKinematics

    return Observation(images[spec.main_camera.name], state, {c.name: images[c.name] for c in spec.wrist_cameras},
                       tool_poses=RobotKinematics(spec).forward(state), joint_velocity=np.zeros_like(state))


def test_the_native_backend_gives_the_direct_calls_chunks_bit_for_bit(bringup) -> None:
    """Routing the node and `vla eval` through the interface must not change a single chunk: the
    same observation, instruction, committed prefix and seed give identical arrays."""
    spec = load_embodiment("so101")
    direct = VLAPolicy.from_pretrained(bringup)
    backend = load_backends(bringup, [spec])["so101"]
    assert isinstance(backend, PolicyBackend)
    rng = np.random.default_rng(7)
    for prefix in (None, rng.normal(0, 0.01, (3, spec.action_dim))):
        observation = _observation(spec, rng)
        expected = direct.predict_chunk(observation, "pick up the cube", "so101", prefix, seed=11)
        got = backend.predict_chunk(observation, "pick up the cube", prefix, seed=11)
        assert got.actions.dtype == expected.actions.dtype and np.array_equal(got.actions, expected.actions)
        assert (got.prefix_length, got.action_space, got.channel_names) == (
            expected.prefix_length, expected.action_space, expected.channel_names)
    needs = backend.requirements
    assert needs.backend == "native" and needs.accepts_prefix and needs.takes_language
    assert needs.chunk_length == spec.chunk_size and needs.action_features == spec.channel_names
    assert [c.name for c in needs.cameras] == [c.name for c in spec.cameras]


def test_a_checkpoint_for_another_robot_is_refused_through_the_interface(bringup) -> None:
    with pytest.raises(ValueError, match=r"trained for \['so101'\], not for embodiment 'aloha'"):
        load_backends(bringup, [load_embodiment("aloha")])


def test_the_kind_of_a_policy_directory_is_read_from_its_files(tmp_path, bringup) -> None:
    assert backend_kind(bringup) == "native"
    (tmp_path / "config.json").write_text(json.dumps({"type": "act"}))
    assert backend_kind(tmp_path) == "lerobot"
    (tmp_path / "config.json").write_text(json.dumps({"n_layers": 2}))
    with pytest.raises(BackendError, match="neither a vla_ros checkpoint .* nor a LeRobot policy directory"):
        backend_kind(tmp_path)
    with pytest.raises(BackendError, match="does not exist") as refused:
        backend_kind(tmp_path / "absent")
    assert refused.value.cause == "missing_checkpoint"


def test_a_hub_id_is_served_from_its_hugging_face_cache_snapshot_offline(tmp_path, bringup, monkeypatch) -> None:
    """LeRobot users name policies by Hub id: the id resolves to the snapshot `refs/main` names in the
    cache (not an older one), and an id with no snapshot is refused naming where it was looked for."""
    import shutil

    from vla_core.backends import resolve_policy_directory

    cache = tmp_path / "hub"
    repo = cache / "models--someone--so101_policy"
    shutil.copytree(bringup, repo / "snapshots" / "new")
    (repo / "snapshots" / "old").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("new\n")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert resolve_policy_directory("someone/so101_policy") == repo / "snapshots" / "new"
    assert backend_kind("someone/so101_policy") == "native"
    backend = load_backends("someone/so101_policy", [load_embodiment("so101")])["so101"]
    assert backend.requirements.backend == "native"
    with pytest.raises(BackendError, match=r"someone/absent does not exist: looked in .*models--someone--absent/"
                                           r"snapshots \(no snapshot in the Hugging Face cache\); nothing is "
                                           r"downloaded") as refused:
        load_backends("someone/absent", [load_embodiment("so101")])
    assert refused.value.cause == "missing_checkpoint"

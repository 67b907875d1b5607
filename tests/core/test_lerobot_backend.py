"""The LeRobot backend: files and features checked at configure time, the child-process protocol,
a crashed child reported and restarted. A real LeRobot ACT trained by LeRobot's own trainer on bags
recorded and converted by this project, served through the child and evaluated with `vla eval`, is
tests/workspace/test_teleop_loop.py (it reuses the loop's dataset)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vla_core.backends import BackendError, backend_kind
from vla_core.backends.joint_targets import encode_joint_targets
from vla_core.backends.lerobot_backend import LeRobotBackend, default_lerobot_python, map_features, read_policy_directory
from vla_core.backends.wire import WireError, receive_message, send_message
from vla_core.embodiment import load_embodiment
from vla_core.kinematics import RobotKinematics
from vla_core.model.batching import Observation

FAKE_CHILD = Path(__file__).with_name("fake_lerobot_child.py")


def _config(images: dict[str, list[int]], state: int = 6, action: int = 6, chunk: int = 20) -> dict:
    inputs = {name: {"type": "VISUAL", "shape": shape} for name, shape in images.items()}
    inputs["observation.state"] = {"type": "STATE", "shape": [state]}
    return {"type": "act", "chunk_size": chunk, "input_features": inputs,
            "output_features": {"action": {"type": "ACTION", "shape": [action]}}}


def _policy_dir(path: Path, config: dict) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config))
    (path / "model.safetensors").write_bytes(b"")
    for name in ("policy_preprocessor", "policy_postprocessor"):
        (path / f"{name}.json").write_text(json.dumps({"name": name, "steps": []}))
    return path


def test_the_wire_carries_numbers_and_text_and_refuses_anything_else() -> None:
    left, right = socket.socketpair()
    with left, right:
        image = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
        send_message(left, {"kind": "predict", "task": "pick ü"}, {"img": image, "s": np.array([1.5, -2.0])})
        header, arrays = receive_message(right)
        assert header == {"kind": "predict", "task": "pick ü"}
        assert np.array_equal(arrays["img"], image) and arrays["s"].dtype == np.float64
        with pytest.raises(ValueError, match="dtype object"):
            send_message(left, {}, {"bad": np.array([{"x": 1}], dtype=object)})
        left.sendall(b"\x00\x00\x00\x05nope!")
        with pytest.raises(WireError, match="not UTF-8 JSON"):
            receive_message(right)
        left.close()
        with pytest.raises(WireError, match="closed the connection"):
            receive_message(right)


def test_missing_normalisation_files_are_refused_by_name(tmp_path) -> None:
    directory = _policy_dir(tmp_path / "act", _config({"observation.images.front": [3, 96, 128]}))
    (directory / "policy_preprocessor.json").write_text(json.dumps({"steps": [
        {"registry_name": "normalizer_processor", "state_file": "policy_preprocessor_step_3_normalizer.safetensors"}]}))
    (directory / "policy_postprocessor.json").unlink()
    assert backend_kind(directory) == "lerobot"
    with pytest.raises(BackendError, match="missing policy_postprocessor.json, "
                                           "policy_preprocessor_step_3_normalizer.safetensors") as refused:
        read_policy_directory(directory)
    assert refused.value.cause == "missing_files"


def test_feature_mapping_errors_name_both_sides(tmp_path) -> None:
    spec = load_embodiment("so101")
    fitting = _config({"observation.images.front": [3, 96, 128], "observation.images.wrist": [3, 96, 128]})
    mapping = map_features(fitting, spec, "act")
    assert [(f, c.name, c.height, c.width) for f, c in mapping.images.items()] == [
        ("observation.images.front", "front", 96, 128), ("observation.images.wrist", "wrist", 96, 128)]
    wrong = _config({"observation.images.top": [3, 96, 128]}, state=14, action=14, chunk=10)
    with pytest.raises(BackendError) as refused:
        map_features(wrong, spec, "aloha_act")
    message = str(refused.value)
    assert refused.value.cause == "feature_mismatch"
    assert "observation.images.top has no camera in the profile" in message
    assert "observation.state has shape [14], the profile has 6 joints" in message
    assert "action must be (6,) joint targets, the policy has [14]" in message
    assert "chunk of 10 rows is shorter than the profile's chunk_size 16" in message
    assert "policy features: observation.images.top [3, 96, 128], observation.state [14], action [14]" in message
    assert "observation.images.front (224x224), observation.images.wrist (224x224)" in message
    assert "'shoulder_pan'" in message


def _observation(spec, rng: np.random.Generator) -> Observation:
    state = rng.uniform(-0.3, 0.3, spec.state_dim)
    images = {c.name: rng.integers(0, 256, (c.height, c.width, 3), dtype=np.uint8) for c in spec.cameras}
    return Observation(images["front"], state, {"wrist": images["wrist"]})


def test_a_crashed_child_is_a_named_fault_and_is_restarted(tmp_path) -> None:
    spec = load_embodiment("so101")
    directory = _policy_dir(tmp_path / "fake", _config({"observation.images.front": [3, 96, 128]}))
    backend = LeRobotBackend(str(directory), spec, child_command=[sys.executable, str(FAKE_CHILD)],
                             start_timeout=60.0, request_timeout=60.0)
    try:
        assert backend.requirements.accepts_prefix is False and backend.requirements.backend == "lerobot:act"
        observation = _observation(spec, np.random.default_rng(3))
        chunk = backend.predict_chunk(observation, "pick", prefix=np.zeros((2, spec.action_dim)))
        targets = observation.state[None, :] + 0.01 * np.arange(spec.chunk_size)[:, None]
        expected = encode_joint_targets(RobotKinematics(spec), targets.astype(np.float32).astype(np.float64),
                                        observation.state)
        assert chunk.prefix_length == 0 and chunk.actions.shape == (spec.chunk_size, spec.action_dim)
        np.testing.assert_allclose(chunk.actions, expected, atol=1e-6)
        with pytest.raises(BackendError, match="predict_failed|a policy error inside one request"):
            backend.predict_chunk(observation, "fail")  # one failed request: the child keeps serving
        first = backend._process.pid
        with pytest.raises(BackendError, match=r"crashed .*exit code 3.*crashing on purpose.*restarting") as fault:
            backend.predict_chunk(observation, "crash")
        assert fault.value.cause == "backend_crashed" and backend.crashes == 1
        deadline = time.monotonic() + 60.0
        while True:
            try:
                chunk = backend.predict_chunk(observation, "pick")
                break
            except BackendError as error:
                assert error.cause == "backend_restarting", error
                assert time.monotonic() < deadline, "the child was not restarted within 60 s"
                time.sleep(0.2)
        assert backend.restarts == 1 and backend._process.pid != first
        np.testing.assert_allclose(chunk.actions, expected, atol=1e-6)
    finally:
        process = backend._process
        backend.close()
    assert process is not None and process.poll() is not None


def test_the_child_runs_with_the_torch_threads_of_the_node(tmp_path, monkeypatch) -> None:
    """torch_threads (the node's parameter) must bind the child too: torch's default of every core
    in a second process is what made LeRobot chunks 30x slower on a shared machine."""
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # what the environment says; the node's setting wins
    directory = _policy_dir(tmp_path / "fake", _config({"observation.images.front": [3, 96, 128]}))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        backend = LeRobotBackend(str(directory), load_embodiment("so101"),
                                 child_command=[sys.executable, str(FAKE_CHILD)], start_timeout=60.0)
    finally:
        torch.set_num_threads(threads)
    try:
        deadline = time.monotonic() + 10.0
        while not any("OMP_NUM_THREADS=" in line for line in backend._output) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "fake child: OMP_NUM_THREADS=1" in backend._output, list(backend._output)
    finally:
        backend.close()


def test_a_child_that_cannot_start_is_refused_with_its_output(tmp_path) -> None:
    spec = load_embodiment("so101")
    directory = _policy_dir(tmp_path / "fake", _config({"observation.images.front": [3, 96, 128]}))
    with pytest.raises(BackendError, match=r"did not connect, exit code 1.*boom") as refused:
        LeRobotBackend(str(directory), spec, child_command=[sys.executable, "-c", "raise SystemExit('boom')"],
                       start_timeout=30.0)
    assert refused.value.cause == "backend_start_failed"
    with pytest.raises(BackendError, match="does not exist: build it with scripts/lerobot_check.sh"):
        LeRobotBackend(str(directory), spec, python=str(tmp_path / "no-venv" / "bin" / "python"))


def test_load_backends_serves_a_lerobot_directory_through_the_named_environment(tmp_path, monkeypatch) -> None:
    """The node and `vla eval` reach the LeRobot backend through load_backends; the environment's
    Python comes from VLA_LEROBOT_PYTHON_BIN (here a wrapper that runs the stand-in child)."""
    from vla_core.backends import load_backends

    wrapper = tmp_path / "python"
    wrapper.write_text(f"#!/bin/sh\nshift\nexec {sys.executable} {FAKE_CHILD} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("VLA_LEROBOT_PYTHON_BIN", str(wrapper))
    spec = load_embodiment("so101")
    directory = _policy_dir(tmp_path / "fake", _config({"observation.images.front": [3, 96, 128]}))
    backend = load_backends(str(directory), [spec])["so101"]
    try:
        chunk = backend.predict_chunk(_observation(spec, np.random.default_rng(1)), "pick")
        assert chunk.actions.shape == (spec.chunk_size, spec.action_dim) and chunk.prefix_length == 0
    finally:
        backend.close()
    with pytest.raises(BackendError, match="native checkpoints only"):
        load_backends(str(directory), [spec], compile=True)
    with pytest.raises(BackendError, match="serves one embodiment, 2 were asked for"):
        load_backends(str(directory), [spec, load_embodiment("aloha")])


def _lerobot_python_or_skip() -> str:
    python = default_lerobot_python()
    if not Path(python).exists():
        pytest.skip(f"no LeRobot environment at {python}: build it with scripts/lerobot_check.sh "
                    f"or set VLA_LEROBOT_PYTHON_BIN")
    probe = subprocess.run([python, "-c", "import lerobot.configs.policies, lerobot.policies.factory"],
                           capture_output=True, text=True, timeout=300)
    if probe.returncode:
        pytest.skip(f"LeRobot's policies do not import in {python}: {probe.stderr.strip().splitlines()[-1:]}")
    return python


def train_tiny_act_with_lerobot(python: str, dataset: Path, output: Path, steps: int) -> Path:
    """Train a tiny ACT on a LeRobot v3.0 dataset with LeRobot's own `lerobot-train` (issue 34's
    "the ecosystem's own trainer"), offline, on the CPU; return the policy directory it saves with
    its processors and normalisation statistics. Sizes are toy ones: the point is that LeRobot's
    trainer reads this project's datasets and the backend serves what it writes, not a good policy."""
    command = [str(Path(python).with_name("lerobot-train")), "--dataset.repo_id=local/vla_ros",
               f"--dataset.root={dataset}", "--dataset.video_backend=pyav", "--policy.type=act",
               "--policy.dim_model=32", "--policy.n_heads=2", "--policy.dim_feedforward=64",
               "--policy.n_encoder_layers=1", "--policy.n_decoder_layers=1", "--policy.use_vae=false",
               "--policy.chunk_size=20", "--policy.n_action_steps=20", "--policy.pretrained_backbone_weights=null",
               "--policy.push_to_hub=false", "--policy.device=cpu", f"--steps={steps}", "--batch_size=2",
               "--num_workers=0", f"--output_dir={output}", f"--save_freq={steps}", "--wandb.enable=false"]
    result = subprocess.run(command, timeout=900, cwd=output.parent, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"lerobot-train failed:\n{(result.stdout + result.stderr)[-4000:]}"
    return output / "checkpoints" / "last" / "pretrained_model"


def test_vla_eval_loads_a_lerobot_directory_and_ends_its_child(tmp_path, monkeypatch) -> None:
    """`vla eval`'s CheckpointPolicy goes through load_backends too, and close() ends the child."""
    from vla_core.evaluation.policies import CheckpointPolicy

    wrapper = tmp_path / "python"
    wrapper.write_text(f"#!/bin/sh\nshift\nexec {sys.executable} {FAKE_CHILD} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("VLA_LEROBOT_PYTHON_BIN", str(wrapper))
    directory = _policy_dir(tmp_path / "fake", _config({"observation.images.front": [3, 96, 128]}))
    policy = CheckpointPolicy.load(str(directory), ["so101"])
    spec = load_embodiment("so101")
    chunk = policy.predict_chunk(_observation(spec, np.random.default_rng(2)), "pick", "so101")
    assert chunk.actions.shape == (spec.chunk_size, spec.action_dim)
    process = policy.backends["so101"]._process
    policy.close()
    assert process.poll() is not None

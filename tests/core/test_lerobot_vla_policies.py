"""LeRobot's VLA policies (X-VLA, SmolVLA, pi0) through the LeRobot backend: what they fetch from
the Hugging Face Hub when built is found on disk or refused by name and place before the child
starts; X-VLA's soft-prompt domain comes from the profile; the child runs offline. Tiny X-VLA
and SmolVLA policies made by LeRobot's own classes (toy sizes, their tokenizer / VLM in a local
directory) are served end to end (slow tests).

The real checkpoints are the user's (several GB, not downloadable here): the last test loads one
given by VLA_TEST_XVLA_DIR, VLA_TEST_SMOLVLA_DIR or VLA_TEST_PI0_DIR through the real child and
predicts a chunk, and is skipped, with the variable named, where it is unset."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from vla_core.backends import BackendError
from vla_core.backends.hub_files import offline_problems
from vla_core.backends.lerobot_backend import (
    CHILD_SCRIPT,
    OFFLINE,
    LeRobotBackend,
    default_lerobot_python,
    read_policy_directory,
    require_offline_files,
)
from vla_core.backends.wire import receive_message, send_message
from vla_core.embodiment import EmbodimentSpec, ProfileError, load_embodiment
from vla_core.model.batching import Observation

FAKE_CHILD = Path(__file__).with_name("fake_lerobot_child.py")
BART = "facebook/bart-large"
SMOLVLM = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"


def _policy_dir(path: Path, policy_type: str, tokenizer: str | None = None, **config: object) -> Path:
    """A LeRobot directory shaped like the saved ones: a 6-joint, one-camera (96x128) policy whose
    pre-processor has a tokenizer step naming `tokenizer`, as LeRobot saves SmolVLA, pi0, X-VLA."""
    path.mkdir(parents=True, exist_ok=True)
    features = {"observation.images.front": {"type": "VISUAL", "shape": [3, 96, 128]},
                "observation.state": {"type": "STATE", "shape": [6]}}
    (path / "config.json").write_text(json.dumps({
        "type": policy_type, "chunk_size": 20, "input_features": features,
        "output_features": {"action": {"type": "ACTION", "shape": [6]}}, **config}))
    (path / "model.safetensors").write_bytes(b"")
    steps = [{"registry_name": "to_batch_processor", "config": {}}]
    if tokenizer:
        steps.append({"registry_name": "tokenizer_processor",
                      "config": {"max_length": 48, "padding": "max_length", "tokenizer_name": tokenizer}})
    (path / "policy_preprocessor.json").write_text(json.dumps({"name": "policy_preprocessor", "steps": steps}))
    (path / "policy_postprocessor.json").write_text(json.dumps({"name": "policy_postprocessor", "steps": []}))
    return path


def _snapshot(cache: Path, repo: str, files: list[str]) -> Path:
    """A Hugging Face cache entry as huggingface_hub writes it: refs/main names the snapshot."""
    entry = cache / ("models--" + repo.replace("/", "--"))
    snapshot = entry / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text("0123abcd")
    for name in files:
        (snapshot / name).write_text("{}")
    return snapshot


def _child_wrapper(tmp_path: Path) -> Path:
    wrapper = tmp_path / "python"
    wrapper.write_text(f"#!/bin/sh\nshift\nexec {sys.executable} {FAKE_CHILD} \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper


def test_a_vla_whose_tokenizer_is_not_on_disk_is_refused_naming_the_files_and_the_place(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    directory = _policy_dir(tmp_path / "xvla", "xvla", BART, num_domains=30)
    spec = load_embodiment("so101")
    # a Python that does not exist: had the check passed, the refusal would be the child's start
    with pytest.raises(BackendError) as refused:
        LeRobotBackend(str(directory), spec, python=str(tmp_path / "no-venv" / "bin" / "python"))
    message = str(refused.value)
    assert refused.value.cause == "missing_files"
    assert "cannot be built offline" in message and "Traceback" not in message
    assert f"{BART} (tokenizer_name of the tokenizer_processor step in policy_preprocessor.json)" in message
    assert "missing tokenizer_config.json or config.json; tokenizer.json or tokenizer.model or " \
           "vocab.json+merges.txt or vocab.txt" in message
    assert str(tmp_path / "hf" / "hub" / "models--facebook--bart-large" / "snapshots") in message

    # the same tokenizer half downloaded: only what is still missing is named, in the snapshot looked at
    snapshot = _snapshot(tmp_path / "hf" / "hub", BART, ["config.json"])
    problems = offline_problems(read_policy_directory(directory), directory)
    assert problems == [f"{BART} (tokenizer_name of the tokenizer_processor step in policy_preprocessor.json): "
                        f"missing tokenizer.json or tokenizer.model or vocab.json+merges.txt or vocab.txt; "
                        f"looked in {snapshot}"]
    for name in ("vocab.json", "merges.txt"):
        (snapshot / name).write_text("{}")
    assert offline_problems(read_policy_directory(directory), directory) == []


def test_smolvla_needs_its_vlm_config_and_processor_and_with_load_vlm_weights_its_weights(tmp_path,
                                                                                        monkeypatch) -> None:
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    directory = _policy_dir(tmp_path / "smolvla", "smolvla", SMOLVLM, vlm_model_name=SMOLVLM, load_vlm_weights=True)
    _snapshot(cache, SMOLVLM, ["config.json", "tokenizer_config.json", "tokenizer.json"])
    with pytest.raises(BackendError, match="cannot be built offline") as refused:
        require_offline_files(read_policy_directory(directory), directory)
    message = str(refused.value)
    assert f"{SMOLVLM} (vlm_model_name in config.json (load_vlm_weights: its weights too)): missing " \
           f"preprocessor_config.json or processor_config.json; model.safetensors or model.safetensors.index.json" \
           in message
    assert f"{SMOLVLM} (tokenizer_name" not in message  # the tokenizer itself is complete


def test_a_local_directory_in_place_of_the_hub_name_is_read_there(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    tokenizer = tmp_path / "paligemma-tokenizer"
    tokenizer.mkdir()
    directory = _policy_dir(tmp_path / "pi0", "pi0", str(tokenizer))
    assert offline_problems(read_policy_directory(directory), directory) == [
        f"{tokenizer} (tokenizer_name of the tokenizer_processor step in policy_preprocessor.json): missing "
        f"tokenizer_config.json or config.json; tokenizer.json or tokenizer.model or vocab.json+merges.txt or "
        f"vocab.txt; looked in {tokenizer}"]
    (tokenizer / "tokenizer_config.json").write_text("{}")
    (tokenizer / "tokenizer.model").write_text("")
    assert offline_problems(read_policy_directory(directory), directory) == []


def _profile(tmp_path: Path, **fields: object) -> Path:
    data = yaml.safe_load(Path(load_embodiment("so101").source).read_text())
    data.update(fields)
    path = tmp_path / "so101_xvla.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_xvlas_domain_id_comes_from_the_profile_and_the_child_runs_offline(tmp_path) -> None:
    directory = _policy_dir(tmp_path / "xvla", "xvla", num_domains=30)
    wrapper = _child_wrapper(tmp_path)
    with pytest.raises(BackendError, match=r"sets none; add `xvla_domain_id: N` \(0..29") as refused:
        LeRobotBackend(str(directory), load_embodiment("so101"), python=str(wrapper))
    assert refused.value.cause == "missing_domain_id"
    with pytest.raises(BackendError, match="has xvla_domain_id 30; X-VLA policy .* has domains 0..29"):
        LeRobotBackend(str(directory), load_embodiment(_profile(tmp_path, xvla_domain_id=30)), python=str(wrapper))
    with pytest.raises(ProfileError, match="'xvla_domain_id' must be an integer >= 0"):
        load_embodiment(_profile(tmp_path, xvla_domain_id=-1))

    spec = load_embodiment(_profile(tmp_path, xvla_domain_id=7))
    backend = LeRobotBackend(str(directory), spec, python=str(wrapper))
    try:
        assert backend.requirements.backend == "lerobot:xvla"
        deadline = time.monotonic() + 10.0
        while not any("argv" in line for line in backend._output) and time.monotonic() < deadline:
            time.sleep(0.05)
        started = next(line for line in backend._output if "argv" in line)
        assert started.startswith("fake child: HF_HUB_OFFLINE=1 argv") and started.endswith("--domain-id 7")
    finally:
        backend.close()
    # a profile without the field keeps its files unchanged (the field is left out when unset)
    assert "xvla_domain_id" not in load_embodiment("so101").to_dict()
    assert spec.to_dict()["xvla_domain_id"] == 7


def test_a_child_that_cannot_find_a_file_offline_reports_it_without_a_stack_trace(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(CHILD_SCRIPT.parent))
    import lerobot_child

    def load() -> None:
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them "
                      "in the cached files.\nCheck your internet connection or see how to run the library in "
                      "offline mode.")

    left, right = socket.socketpair()
    with left, right:
        lerobot_child.serve(right, load)
        header, _ = receive_message(left)
    assert header["kind"] == "error" and header["cause"] == "missing_files"
    assert "not on disk (nothing is downloaded at run time): OSError: We couldn't connect" in header["message"]
    assert "Traceback" not in header["message"] and "\n" not in header["message"]


def _lerobot_python_with(module: str) -> str:
    """The LeRobot environment's Python where `module` imports there, else skip naming why."""
    python = default_lerobot_python()
    if not Path(python).exists():
        pytest.skip(f"no LeRobot environment at {python}: build it with scripts/lerobot_check.sh")
    with tempfile.TemporaryDirectory() as scratch:
        probe = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True, timeout=300,
                               cwd=scratch)
    if probe.returncode:
        pytest.skip(f"{module} does not import in {python} (rebuild it with scripts/lerobot_check.sh): "
                    f"{probe.stderr.strip().splitlines()[-1:]}")
    return python


def _make_tiny(python: str, policy_type: str, directory: Path) -> None:
    """scripts/make_tiny_lerobot_<policy_type>.py into `directory`, offline, with LeRobot's Python."""
    script = Path(__file__).resolve().parents[2] / "scripts" / f"make_tiny_lerobot_{policy_type}.py"
    subprocess.run([python, str(script), str(directory)], check=True, timeout=600, capture_output=True,
                   cwd=directory.parent, env={**os.environ, **OFFLINE})


def _random_observation(seed: int) -> Observation:
    """Two 224x224 cameras (front, wrist) and a 6-value state, as the SO-101 profile gives them."""
    rng = np.random.default_rng(seed)
    front, wrist = (rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(2))
    return Observation(front, rng.uniform(-0.3, 0.3, 6), {"wrist": wrist})


def _served_chunk(directory: Path, spec: EmbodimentSpec, python: str, observation: Observation, backend_name: str) -> np.ndarray:
    """One chunk from the policy served through the child, checked: the named backend, no committed
    prefix, the profile's shape, finite, and the same again for the same seed."""
    backend = LeRobotBackend(str(directory), spec, python=python)
    try:
        assert backend.requirements.backend == backend_name and not backend.requirements.accepts_prefix
        chunk = backend.predict_chunk(observation, "pick up the cube", seed=0)
        again = backend.predict_chunk(observation, "pick up the cube", seed=0)
    finally:
        backend.close()
    assert chunk.actions.shape == (spec.chunk_size, spec.action_dim) and np.all(np.isfinite(chunk.actions))
    np.testing.assert_array_equal(chunk.actions, again.actions)
    return chunk.actions


@pytest.mark.slow
def test_a_tiny_xvla_made_by_lerobot_is_served_offline_with_the_profiles_soft_prompt(tmp_path) -> None:
    """LeRobot's own X-VLA classes at toy sizes (scripts/make_tiny_lerobot_xvla.py; its tokenizer a
    local directory): loaded offline by the child, chunks in the profile's action space,
    deterministic for a seed, and the profile's domain id picks the soft prompt (another id,
    another chunk from the same observation and seed)."""
    python = _lerobot_python_with("lerobot.policies.xvla.modeling_xvla")
    directory = tmp_path / "xvla"
    _make_tiny(python, "xvla", directory)
    observation = _random_observation(5)
    chunks = {domain: _served_chunk(directory, load_embodiment(_profile(tmp_path, xvla_domain_id=domain)), python,
                                    observation, "lerobot:xvla") for domain in (1, 3)}
    assert not np.allclose(chunks[1], chunks[3]), "the profile's domain id did not change the soft prompt"


@pytest.mark.slow
def test_a_tiny_smolvla_made_by_lerobot_is_served_offline_and_refused_without_its_vlm_files(tmp_path) -> None:
    """LeRobot's own SmolVLA classes around a toy SmolVLM saved by transformers in a local directory
    (scripts/make_tiny_lerobot_smolvla.py): served offline through the child, deterministic for a
    seed; with the VLM's tokenizer file gone, the same directory is refused naming it."""
    python = _lerobot_python_with("lerobot.policies.smolvla.modeling_smolvla")
    directory = tmp_path / "smolvla"
    _make_tiny(python, "smolvla", directory)
    spec = load_embodiment("so101")
    _served_chunk(directory, spec, python, _random_observation(6), "lerobot:smolvla")

    (directory / "vlm" / "tokenizer.json").unlink()
    with pytest.raises(BackendError, match="cannot be built offline") as refused:
        LeRobotBackend(str(directory), spec, python=python)
    assert f"{directory / 'vlm'} (vlm_model_name in config.json): missing tokenizer.json or tokenizer.model" \
           in str(refused.value)


REAL_POLICIES = [("xvla", "VLA_TEST_XVLA_DIR"), ("smolvla", "VLA_TEST_SMOLVLA_DIR"), ("pi0", "VLA_TEST_PI0_DIR")]


def _dummy_inputs(config: dict) -> dict[str, np.ndarray]:
    """An input of every feature the policy reads: images as the node sends them (H, W, 3 uint8)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for name, feature in config["input_features"].items():
        shape = tuple(feature["shape"])
        if feature.get("type") == "VISUAL":
            arrays[name] = rng.integers(0, 256, (shape[1], shape[2], 3), dtype=np.uint8)
        else:
            arrays[name] = np.zeros(shape, dtype=np.float32)
    return arrays


@pytest.mark.slow
@pytest.mark.parametrize(("policy_type", "variable"), REAL_POLICIES)
def test_the_users_real_policy_loads_offline_and_predicts_a_chunk(policy_type: str, variable: str) -> None:
    """The user's own LeRobot policy directory (and its tokenizer / VLM files in the Hugging Face
    cache), loaded offline by the real child with LeRobot's classes; one chunk predicted. Through
    the child directly: a real checkpoint's features are its robot's, not an SO-101's."""
    directory = os.environ.get(variable)
    if not directory:
        pytest.skip(f"{variable} is not set: point it at a local LeRobot {policy_type} policy directory (its "
                    f"tokenizer and VLM files in the Hugging Face cache) to run this")
    python = default_lerobot_python()
    if not Path(python).exists():
        pytest.skip(f"no LeRobot environment at {python}: build it with scripts/lerobot_check.sh")
    config = read_policy_directory(directory)
    assert config["type"] == policy_type, f"{variable} holds a {config['type']} policy, not {policy_type}"
    require_offline_files(config, directory)  # a missing file fails here, named
    domain = [] if policy_type != "xvla" else ["--domain-id", os.environ.get("VLA_TEST_XVLA_DOMAIN_ID", "0")]
    with tempfile.TemporaryDirectory() as folder, socket.socket(socket.AF_UNIX) as listener:
        listener.bind(os.path.join(folder, "child.sock"))
        listener.listen(1)
        listener.settimeout(1800)
        child = subprocess.Popen([python, str(CHILD_SCRIPT), "--connect", os.path.join(folder, "child.sock"),
                                  "--policy", directory, *domain], env={**os.environ, **OFFLINE})
        try:
            sock, _ = listener.accept()
            with sock:
                sock.settimeout(1800)
                header, _ = receive_message(sock)
                assert header["kind"] == "ready", header
                send_message(sock, {"kind": "predict", "task": "pick up the cube", "seed": 0}, _dummy_inputs(config))
                header, answer = receive_message(sock)
                assert header["kind"] == "chunk", header
                action = config["output_features"]["action"]["shape"][-1]
                assert answer["action"].ndim == 2 and answer["action"].shape[1] == action
                assert answer["action"].shape[0] >= 1 and np.all(np.isfinite(answer["action"]))
                send_message(sock, {"kind": "close"})
            assert child.wait(timeout=60) == 0
        finally:
            if child.poll() is None:
                child.kill()

"""LeRobot policies as a backend, served by a child process in LeRobot's own environment.

LeRobot pins torch and Python versions that the node's environment need not have, so the policy
runs in `lerobot_child.py` under the Python of a named environment (the LeRobot venv of
`scripts/lerobot_check.sh` by default) and is reached over a Unix socket with `wire`'s frames:
JSON headers and raw numeric arrays, never pickle. Everything that can be checked without
LeRobot is checked here, at configure time, before the child is started: the files (the
normalisation statistics live in the processor files) and the feature mapping from the
embodiment profile to the policy's `observation.images.*`, `observation.state` and `action`.

A LeRobot policy outputs absolute joint targets (the `action` of a LeRobot dataset, as
`vla convert` writes it); they are re-expressed in the profile's action space relative to the
observed joints (`encode_joint_targets`), so the executor decodes them like any chunk. LeRobot
policies cannot condition on a committed prefix: `accepts_prefix` is False and the async
executor switches chunks at the latency-matched row.

SmolVLA, pi0 and X-VLA load a tokenizer (SmolVLA also a VLM config) from the Hugging Face Hub by
name while they are built; the child runs offline (HF_HUB_OFFLINE=1), so those files are looked
for before it starts (`hub_files`) and a missing one is refused by name and place. X-VLA's
soft-prompt domain id comes from the profile (`xvla_domain_id`), overriding the saved one.

A child that dies is a named fault (`backend_crashed`, with its exit code and last output): the
request that met it is refused, the child is restarted in the background, and requests made
while it restarts are refused as `backend_restarting`.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vla_core.backends.base import BackendError, CameraNeed, PolicyRequirements
from vla_core.backends.hub_files import hub_cache, offline_problems
from vla_core.backends.joint_targets import encode_joint_targets
from vla_core.backends.wire import WireError, receive_message, send_message
from vla_core.embodiment import EmbodimentSpec
from vla_core.images import resize_rgb
from vla_core.kinematics import RobotKinematics
from vla_core.model.batching import Observation
from vla_core.model.policy import PredictedChunk

CHILD_SCRIPT = Path(__file__).with_name("lerobot_child.py")
REQUIRED_FILES = ("config.json", "model.safetensors", "policy_preprocessor.json", "policy_postprocessor.json")
IMAGE_PREFIX = "observation.images."
STATE, ACTION = "observation.state", "action"
# nothing is downloaded at run time: transformers and huggingface_hub read only what is on disk
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def default_lerobot_python() -> str:
    """The LeRobot environment's Python: $VLA_LEROBOT_PYTHON_BIN, else the venv that
    scripts/lerobot_check.sh builds (${VLA_LEROBOT_VENV:-~/.cache/vla_ros/venv-lerobot})."""
    if os.environ.get("VLA_LEROBOT_PYTHON_BIN"):
        return os.environ["VLA_LEROBOT_PYTHON_BIN"]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    venv = Path(os.environ.get("VLA_LEROBOT_VENV", cache / "vla_ros" / "venv-lerobot"))
    return str(venv / "bin" / "python")


def read_policy_directory(directory: str | Path) -> dict[str, Any]:
    """The policy's config.json, refused by name when a file LeRobot needs to serve it is missing:
    the model, its config, and the processors with the state files (normalisation statistics)
    they reference."""
    directory = Path(directory)
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    for processor in REQUIRED_FILES[2:]:
        path = directory / processor
        if path.is_file():
            try:
                steps = json.loads(path.read_text()).get("steps", [])
            except (ValueError, AttributeError) as error:
                raise BackendError("bad_checkpoint", f"{path} is not a LeRobot processor file: {error}") from error
            missing += [step["state_file"] for step in steps
                        if isinstance(step, dict) and step.get("state_file")
                        and not (directory / step["state_file"]).is_file()]
    if missing:
        raise BackendError("missing_files", f"LeRobot policy {directory} cannot be served: missing {', '.join(missing)} "
                                            f"(normalisation statistics live in the processor files; save the policy "
                                            f"with its pre- and post-processors, as lerobot-train does)")
    try:
        config = json.loads((directory / "config.json").read_text())
    except ValueError as error:
        raise BackendError("bad_checkpoint", f"{directory / 'config.json'} is not JSON: {error}") from error
    if not isinstance(config, dict) or not isinstance(config.get("type"), str):
        raise BackendError("bad_checkpoint", f"{directory / 'config.json'} has no policy \"type\"")
    return config


def require_offline_files(config: dict[str, Any], directory: str | Path) -> None:
    """Refuse (`missing_files`) a policy whose construction would fetch a tokenizer or VLM config
    from the Hugging Face Hub that is not on disk, naming the files and where they were looked for."""
    problems = offline_problems(config, directory)
    if problems:
        raise BackendError("missing_files", f"LeRobot policy {directory} ({config.get('type')}) cannot be built "
                                            f"offline: it loads these by name from the Hugging Face Hub, and nothing "
                                            f"is downloaded at run time:\n  " + "\n  ".join(problems) +
                                            f"\n  Put them in the cache ({hub_cache()}; set HF_HOME or HF_HUB_CACHE "
                                            f"to another), e.g. `huggingface-cli download NAME` on a machine with "
                                            f"access, or write a local directory in place of the name.")


def xvla_domain_id(config: dict[str, Any], spec: EmbodimentSpec, directory: str | Path) -> int | None:
    """The soft-prompt domain id an X-VLA policy runs with: the profile's `xvla_domain_id`, checked
    against the policy's `num_domains`; None for other policy types."""
    if config.get("type") != "xvla":
        return None
    domains = int(config.get("num_domains") or 0)
    if spec.xvla_domain_id is None:
        raise BackendError("missing_domain_id", f"LeRobot policy {directory} is X-VLA: its soft prompt is chosen by "
                                                f"a domain id, and profile {spec.source or spec.name} sets none; add "
                                                f"`xvla_domain_id: N` (0..{domains - 1}, the id of the training "
                                                f"domain nearest this robot) to the profile")
    if domains and not 0 <= spec.xvla_domain_id < domains:
        raise BackendError("feature_mismatch", f"profile {spec.source or spec.name} has xvla_domain_id "
                                               f"{spec.xvla_domain_id}; X-VLA policy {directory} has domains "
                                               f"0..{domains - 1}")
    return spec.xvla_domain_id


@dataclass(frozen=True)
class FeatureMapping:
    """Which profile camera feeds which `observation.images.*` feature, at the policy's size."""

    images: dict[str, CameraNeed]  # policy feature -> the profile's camera, at the policy's (H, W)
    chunk_size: int
    policy_type: str


def _features(config: dict[str, Any], key: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    features = config.get(key) or {}
    return {name: (str(value.get("type", "")), tuple(int(n) for n in value.get("shape", ())))
            for name, value in features.items() if isinstance(value, dict)}


def map_features(config: dict[str, Any], spec: EmbodimentSpec, directory: str | Path) -> FeatureMapping:
    """The profile's cameras and joints matched by name to the policy's features; a BackendError
    (`feature_mismatch`) listing both sides when they do not match. Cameras map as `vla convert`
    names them (`observation.images.<camera>`); state and action are the profile's joints in
    `joint_names` order (absolute positions)."""
    inputs, outputs = _features(config, "input_features"), _features(config, "output_features")
    cameras = {IMAGE_PREFIX + c.name: c for c in spec.cameras}
    joints = len(spec.joint_names)
    problems, images = [], {}
    for name, (_, shape) in inputs.items():
        if name.startswith(IMAGE_PREFIX):
            if name not in cameras:
                problems.append(f"{name} has no camera in the profile")
            elif len(shape) != 3 or shape[0] != 3:
                problems.append(f"{name} has shape {list(shape)}, expected (3, H, W) RGB")
            else:
                images[name] = CameraNeed(cameras[name].name, shape[1], shape[2])
        elif name == STATE:
            if shape != (joints,):
                problems.append(f"{STATE} has shape {list(shape)}, the profile has {joints} joints")
        else:
            problems.append(f"{name} is not something the profile provides")
    if STATE not in inputs:
        problems.append(f"the policy reads no {STATE}")
    if ACTION not in outputs or outputs[ACTION][1] != (joints,):
        problems.append(f"{ACTION} must be ({joints},) joint targets, the policy has "
                        f"{list(outputs[ACTION][1]) if ACTION in outputs else 'none'}")
    chunk_size = int(config.get("chunk_size") or config.get("n_action_steps") or 0)
    if chunk_size < spec.chunk_size:
        problems.append(f"its chunk of {chunk_size} rows is shorter than the profile's chunk_size {spec.chunk_size}")
    if problems:
        policy_side = [f"{name} {list(shape)}" for name, (_, shape) in {**inputs, **outputs}.items()]
        profile_side = [f"{name} ({c.height}x{c.width})" for name, c in cameras.items()]
        profile_side += [f"{STATE} and {ACTION} {list(spec.joint_names)}", f"chunk_size {spec.chunk_size}"]
        raise BackendError("feature_mismatch", f"LeRobot policy {directory} ({config.get('type')}) does not fit "
                                               f"embodiment {spec.name}: {'; '.join(problems)}.\n"
                                               f"  policy features: {', '.join(policy_side)}\n"
                                               f"  profile {spec.source or spec.name} gives: {', '.join(profile_side)}")
    return FeatureMapping(images, chunk_size, str(config["type"]))


class LeRobotBackend:
    """A LeRobot policy in a child process, bound to one embodiment profile."""

    def __init__(self, directory: str, spec: EmbodimentSpec, device: str = "cpu", python: str | None = None,
                 child_command: list[str] | None = None, start_timeout: float = 300.0,
                 request_timeout: float = 120.0) -> None:
        config = read_policy_directory(directory)
        require_offline_files(config, directory)
        self.domain_id = xvla_domain_id(config, spec, directory)
        self.mapping = map_features(config, spec, directory)
        self.directory, self.spec, self.device = directory, spec, device
        self.kinematics = RobotKinematics(spec)
        self.python = python or default_lerobot_python()
        # the command that starts the child; a test may put a stand-in there
        self.command = child_command or [self.python, str(CHILD_SCRIPT)]
        self.start_timeout, self.request_timeout = start_timeout, request_timeout
        self.restarts, self.crashes = 0, 0
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._output: deque[str] = deque(maxlen=20)
        self._restarting: threading.Thread | None = None
        self._closed = False
        self._requirements = PolicyRequirements(
            backend=f"lerobot:{self.mapping.policy_type}", cameras=tuple(self.mapping.images.values()),
            state_features=spec.joint_names, action_features=spec.channel_names, chunk_length=spec.chunk_size,
            action_space=spec.action_space, takes_language=True, accepts_prefix=False)
        self._start()

    @property
    def requirements(self) -> PolicyRequirements:
        return self._requirements

    # ---- the child process ---------------------------------------------------------------
    def _start(self) -> None:
        """Start the child and wait for its "ready"; BackendError (`backend_start_failed`) otherwise."""
        if not Path(self.command[0]).exists() and self.command[0] == self.python:
            raise BackendError("backend_start_failed", f"the LeRobot environment's Python {self.python} does not exist: "
                                                       f"build it with scripts/lerobot_check.sh or set "
                                                       f"VLA_LEROBOT_PYTHON_BIN")
        folder = tempfile.mkdtemp(prefix="vla-lerobot-")
        path = os.path.join(folder, "policy.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(path)
            listener.listen(1)
            listener.settimeout(0.5)
            self._output.clear()
            # the node's torch_threads reaches the child as it reaches an in-process policy: torch's
            # default of every core made a tiny ACT 30x slower on a shared 2-core machine
            # (benchmarks/bench_lerobot_backend.py: 1.1 s a chunk against 35 ms with one thread)
            domain = [] if self.domain_id is None else ["--domain-id", str(self.domain_id)]
            process = subprocess.Popen([*self.command, "--connect", path, "--policy", str(self.directory),
                                        "--device", self.device, *domain], stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True,
                                       env={**os.environ, **OFFLINE, "OMP_NUM_THREADS": str(torch.get_num_threads())})
            threading.Thread(target=self._drain, args=(process,), daemon=True).start()
            deadline = time.monotonic() + self.start_timeout
            sock = None
            while sock is None:
                try:
                    sock, _ = listener.accept()
                except TimeoutError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        process.kill()
                        raise BackendError("backend_start_failed", self._ended("did not connect", process)) from None
        os.unlink(path)
        os.rmdir(folder)
        sock.settimeout(self.start_timeout)
        try:
            header, _ = receive_message(sock)
        except (WireError, OSError) as error:
            process.kill()
            sock.close()
            raise BackendError("backend_start_failed", self._ended(f"failed while loading ({error})", process)) from error
        if header.get("kind") != "ready":
            process.kill()
            sock.close()
            raise BackendError(str(header.get("cause", "backend_start_failed")),
                               f"the LeRobot child could not load {self.directory}: {header.get('message', header)}")
        sock.settimeout(self.request_timeout)
        self._process, self._sock = process, sock

    def _drain(self, process: subprocess.Popen) -> None:
        """Keep the child's last lines of output, for the fault message; never let its pipe fill."""
        for line in process.stdout or ():
            self._output.append(line.rstrip())

    def _ended(self, what: str, process: subprocess.Popen) -> str:
        try:
            code = process.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            code = None
        tail = " | ".join(list(self._output)[-5:])
        return (f"the LeRobot child process (pid {process.pid}, {self.command[0]}) {what}, exit code {code}"
                + (f"; last output: {tail}" if tail else ""))

    def _restart(self) -> None:
        try:
            self._start()
            self.restarts += 1
        except BackendError as error:
            self._output.append(f"restart failed: {error}")

    # ---- requests ------------------------------------------------------------------------
    def predict_chunk(self, observation: Observation, instruction: str,
                      prefix: np.ndarray | None = None, seed: int | None = None) -> PredictedChunk:
        """The policy's chunk for `observation`, re-expressed in the profile's action space. The
        committed prefix is ignored (prefix_length 0): LeRobot policies do not condition on it."""
        if self._restarting is not None and self._restarting.is_alive():
            raise BackendError("backend_restarting", "the LeRobot child process is being restarted after a crash")
        if self._sock is None:
            raise BackendError("backend_unavailable", f"the LeRobot child process is not running: "
                                                      f"{' | '.join(list(self._output)[-3:]) or 'closed'}")
        state = np.asarray(observation.state, dtype=np.float64)
        arrays: dict[str, np.ndarray] = {STATE: state.astype(np.float32)}
        for feature, camera in self.mapping.images.items():
            image = (observation.main_image if camera.name == self.spec.main_camera.name
                     else observation.wrist_images[camera.name])
            image = np.asarray(image)
            if image.dtype != np.uint8:
                image = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
            if image.shape[0] == 3 and image.shape[-1] != 3:
                image = image.transpose(1, 2, 0)
            if image.shape[:2] != (camera.height, camera.width):
                image = resize_rgb(image, camera.width, camera.height)
            arrays[feature] = np.ascontiguousarray(image)
        started = time.perf_counter()
        with self._lock:
            try:
                send_message(self._sock, {"kind": "predict", "task": instruction, "seed": seed}, arrays)
                header, answer = receive_message(self._sock)
            except (WireError, OSError) as error:
                self._crashed(error)
        latency = time.perf_counter() - started
        if header.get("kind") != "chunk":
            raise BackendError(str(header.get("cause", "backend_failed")),
                               f"the LeRobot policy failed: {header.get('message', header)}")
        targets = np.asarray(answer.get(ACTION), dtype=np.float64)
        if targets.ndim != 2 or targets.shape[0] < self.spec.chunk_size or not np.all(np.isfinite(targets)):
            raise BackendError("bad_chunk", f"the LeRobot policy answered a chunk of shape {targets.shape}, expected "
                                            f"finite ({self.spec.chunk_size}+, {len(self.spec.joint_names)}) rows")
        actions = encode_joint_targets(self.kinematics, targets[: self.spec.chunk_size], state)
        return PredictedChunk(actions, self.spec.name, self.spec.action_space, self.spec.channel_names, 0,
                              0.0, latency)

    def _crashed(self, error: Exception) -> None:
        """The child is gone: name the fault, start a new child in the background, raise."""
        process, sock = self._process, self._sock
        self._process, self._sock = None, None
        if sock is not None:
            sock.close()
        if process is not None and process.poll() is None:
            process.kill()
        self.crashes += 1
        message = self._ended(f"crashed ({error})", process) if process is not None else str(error)
        if not self._closed:
            self._restarting = threading.Thread(target=self._restart, daemon=True, name="lerobot-restart")
            self._restarting.start()
        raise BackendError("backend_crashed", message + "; restarting it")

    def close(self) -> None:
        """Ask the child to exit, then make sure it has."""
        self._closed = True
        if self._restarting is not None:
            self._restarting.join()
        process, sock = self._process, self._sock
        self._process, self._sock = None, None
        if sock is not None:
            try:
                send_message(sock, {"kind": "close"})
            except OSError:
                pass
            sock.close()
        if process is not None:
            try:
                process.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def python_for(environment: str | None) -> str | None:
    """A named environment (a venv directory or a Python executable) as the Python to run."""
    if not environment:
        return None
    path = Path(environment)
    return str(path / "bin" / "python") if path.is_dir() else str(path)


def load_lerobot(directory: str, specs: list[EmbodimentSpec], device: str = "cpu",
                 environment: str | None = None) -> dict[str, LeRobotBackend]:
    """A LeRobot policy drives one robot: one child for the one profile."""
    if len(specs) != 1:
        raise BackendError("unsupported_backend", f"a LeRobot policy serves one embodiment, {len(specs)} were asked "
                                                  f"for ({', '.join(s.name for s in specs)})")
    return {specs[0].name: LeRobotBackend(directory, specs[0], device, python_for(environment))}


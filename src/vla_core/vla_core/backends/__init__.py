"""Policy backends: the one interface through which the node, the executor and `vla eval` run a policy.

`load_backends(directory, specs)` reads what kind of policy a local directory holds (this
project's checkpoint: `native`; a LeRobot policy directory: `lerobot`, served by a child process
in LeRobot's environment) and returns one `PolicyBackend` per embodiment profile. Nothing is fetched: the directory (a Hugging Face
cache snapshot included) must hold every file.
"""
from __future__ import annotations

import json
from pathlib import Path

from vla_core.backends.base import BackendError, CameraNeed, PolicyBackend, PolicyRequirements
from vla_core.embodiment import EmbodimentSpec

__all__ = ["BackendError", "CameraNeed", "PolicyBackend", "PolicyRequirements", "backend_kind", "load_backends"]


def backend_kind(directory: str | Path) -> str:
    """'native' (this project's checkpoint: embodiments.json beside config.json) or 'lerobot'
    (a LeRobot policy directory: config.json with a policy "type"), else a BackendError."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BackendError("missing_checkpoint", f"policy directory {directory} does not exist")
    if (directory / "embodiments.json").is_file():
        return "native"
    config = directory / "config.json"
    if config.is_file():
        try:
            kind = json.loads(config.read_text()).get("type")
        except (ValueError, AttributeError) as error:
            raise BackendError("bad_checkpoint", f"{config} is not a JSON object: {error}") from error
        if isinstance(kind, str) and kind:
            return "lerobot"
    raise BackendError("unknown_checkpoint", f"{directory} is neither a vla_ros checkpoint (embodiments.json) nor a "
                                             f"LeRobot policy directory (config.json with a policy \"type\")")


def load_backends(directory: str, specs: list[EmbodimentSpec], device: str = "cpu", compile: bool = False,
                  cuda_graphs: bool = False) -> dict[str, PolicyBackend]:
    """A backend per profile for the policy in `directory` (refused by name when it cannot drive one)."""
    kind = backend_kind(directory)
    if kind == "native":
        from vla_core.backends.native import load_native

        return dict(load_native(directory, specs, device, compile, cuda_graphs))
    if compile or cuda_graphs:
        raise BackendError("unsupported_backend", f"{directory} is a LeRobot policy: inference_compile and "
                                                  f"inference_cuda_graphs apply to native checkpoints only")
    from vla_core.backends.lerobot_backend import load_lerobot

    # the LeRobot environment: $VLA_LEROBOT_PYTHON_BIN, else scripts/lerobot_check.sh's venv
    return dict(load_lerobot(directory, specs, device))

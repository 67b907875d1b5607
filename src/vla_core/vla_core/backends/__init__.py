"""Policy backends: the one interface through which the node, the executor and `vla eval` run a policy.

`load_backends(directory, specs)` reads what kind of policy a local directory holds (this
project's checkpoint: `native`; a LeRobot policy directory: `lerobot`, served by a child process
in LeRobot's environment; a policy set of one such checkpoint per embodiment: `set`,
`vla_core.policy_set`) and returns one `PolicyBackend` per embodiment profile. Nothing is fetched: the directory must
hold every file. A Hub repository id ("lerobot/smolvla_base") stands for its snapshot in the Hugging Face cache
(`resolve_policy_directory`), as LeRobot users name policies.
"""
from __future__ import annotations

import json
from pathlib import Path

from vla_core.backends.base import BackendError, CameraNeed, PolicyBackend, PolicyRequirements
from vla_core.checkpoint import CheckpointError
from vla_core.embodiment import EmbodimentSpec
from vla_core.policy_set import is_policy_set, member_for

__all__ = ["BackendError", "CameraNeed", "PolicyBackend", "PolicyRequirements", "backend_kind", "load_backends",
           "resolve_policy_directory"]


def resolve_policy_directory(name: str | Path) -> Path:
    """The local directory of policy `name`: a directory as given, else a Hub repository id resolved
    offline to its snapshot in the Hugging Face cache (`refs/main`, else the newest), because LeRobot
    users name policies by id and nothing may be downloaded at run time."""
    from vla_core.backends.hub_files import locate

    found, where = locate(str(name))
    if found is None:
        raise BackendError("missing_checkpoint", f"policy directory {name} does not exist: looked in {where}; "
                                                 f"nothing is downloaded at run time")
    return found


def backend_kind(directory: str | Path) -> str:
    """'native' (this project's checkpoint: embodiments.json beside config.json), 'lerobot'
    (a LeRobot policy directory: config.json with a policy "type") or 'set' (policies.json: a
    checkpoint per embodiment), else a BackendError."""
    directory = resolve_policy_directory(directory)
    if is_policy_set(directory):
        return "set"
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
    """A backend per profile for the policy in `directory`, or the cache snapshot of a Hub id (refused
    by name when it cannot drive one)."""
    directory = str(resolve_policy_directory(directory))
    kind = backend_kind(directory)
    if kind == "set":
        return _load_set_members(directory, specs, device, compile, cuda_graphs)
    if kind == "native":
        from vla_core.backends.native import load_native

        return dict(load_native(directory, specs, device, compile, cuda_graphs))
    if compile or cuda_graphs:
        raise BackendError("unsupported_backend", f"{directory} is a LeRobot policy: inference_compile and "
                                                  f"inference_cuda_graphs apply to native checkpoints only")
    from vla_core.backends.lerobot_backend import load_lerobot

    # the LeRobot environment: $VLA_LEROBOT_PYTHON_BIN, else scripts/lerobot_check.sh's venv
    return dict(load_lerobot(directory, specs, device))


def _load_set_members(directory: str, specs: list[EmbodimentSpec], device: str, compile: bool,
                      cuda_graphs: bool) -> dict[str, PolicyBackend]:
    """Each profile's backend from its member of the set; profiles served by one member share it."""
    by_member: dict[Path, list[EmbodimentSpec]] = {}
    for spec in specs:
        try:
            member = member_for(directory, spec.name)
        except CheckpointError as error:
            raise BackendError("bad_checkpoint", str(error)) from error
        by_member.setdefault(member, []).append(spec)
    backends: dict[str, PolicyBackend] = {}
    for member, served in by_member.items():
        backends.update(load_backends(str(member), served, device, compile, cuda_graphs))
    return backends

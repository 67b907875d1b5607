"""Policy sets: one checkpoint per embodiment behind one directory name.

One policy trained for both simulated robots picked fewer cubes than one policy per robot at the
same passes over that robot's data, although its validation L1 was lower
(docs/experiments/2026-12-07-per-robot-passes.md). A set keeps users naming one directory
(`checkpoints/default`, a node's `checkpoint` parameter, `vla eval --checkpoint`) while each
embodiment is served by its own checkpoint: `policies.json` maps each embodiment to a
subdirectory of the set, which is an ordinary checkpoint (native or LeRobot).
"""
from __future__ import annotations

import json
from pathlib import Path

from vla_core.checkpoint import EMBODIMENTS_FILE, POLICY_SET_FILE, CheckpointError


def is_policy_set(directory: str | Path) -> bool:
    """Whether `directory` is a policy set (holds `policies.json`)."""
    return (Path(directory) / POLICY_SET_FILE).is_file()


def read_policy_set(directory: str | Path) -> dict[str, Path]:
    """Each embodiment's checkpoint directory in the set at `directory`; refused by name when
    `policies.json` is not an object of embodiment -> existing subdirectory of the set, or a member
    is itself a set (one level only)."""
    directory = Path(directory)
    path = directory / POLICY_SET_FILE
    try:
        members = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not readable as JSON: {error}") from error
    if not isinstance(members, dict) or not members:
        raise CheckpointError(f"{path}: expected an object of embodiment name -> checkpoint subdirectory, "
                              f"got {members!r}")
    resolved = {}
    for embodiment, relative in members.items():
        if not isinstance(relative, str) or Path(relative).is_absolute() or ".." in Path(relative).parts:
            raise CheckpointError(f"{path}: the checkpoint of {embodiment!r} must be a subdirectory of the set, "
                                  f"got {relative!r}")
        member = directory / relative
        if not member.is_dir():
            raise CheckpointError(f"{path}: the checkpoint of {embodiment!r}, {member}, does not exist")
        if is_policy_set(member):
            raise CheckpointError(f"{member} is a policy set inside the set {directory}: one level only")
        resolved[embodiment] = member
    return resolved


def member_for(directory: str | Path, embodiment: str) -> Path:
    """The checkpoint that serves `embodiment`: the set's member, or `directory` itself when it is
    an ordinary checkpoint (which then checks that it was trained for the embodiment)."""
    if not is_policy_set(directory):
        return Path(directory)
    members = read_policy_set(directory)
    if embodiment not in members:
        raise CheckpointError(f"policy set {directory} holds checkpoints for {sorted(members)}, not for "
                              f"embodiment {embodiment!r}")
    return members[embodiment]


def write_policy_set(directory: str | Path, members: dict[str, str]) -> Path:
    """Write `policies.json` for checkpoints already inside `directory` (checked as a reader would)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / POLICY_SET_FILE).write_text(json.dumps(members, indent=2, sort_keys=True) + "\n")
    read_policy_set(directory)
    return directory


def served_embodiments(directory: str | Path) -> list[str]:
    """The embodiments a native checkpoint or a set of them can drive, sorted."""
    if is_policy_set(directory):
        return sorted(read_policy_set(directory))
    return sorted(json.loads((Path(directory) / EMBODIMENTS_FILE).read_text()))

"""The true pose of the named cube at every frame of a simulated demonstration, by replaying it.

`vla collect` writes each episode's seed, task, target cube and disturbance in its metadata, and a
scripted episode is a deterministic function of them (the scene's reset, the teleoperator's plan,
MuJoCo's physics), so playing it again without cameras reproduces every recorded state (to the
dataset's float32 rounding) and gives what the recording does not hold: where the cube was at each
frame. A replay whose states drift from the recording is refused by name, never used.

Diagnosis only: a `privileged_object_pose` policy trains on these poses instead of images, so its
success measures action learning and execution without perception. Real demonstrations have no
such truth, and neither do recovery episodes (`vla collect --recover-with`: a checkpoint drove them).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from vla_core.data.episode import Episode
from vla_core.embodiment import EmbodimentSpec
from vla_core.sim.scene import TabletopScene
from vla_core.sim.teleop import ScriptedTeleop

STATE_TOLERANCE = 1e-4  # rad or m: float32 rounding is about 1e-7; a different plan differs by centimetres


def replay_object_poses(episode: Episode, scene: TabletopScene, teleop: ScriptedTeleop,
                        tolerance: float = STATE_TOLERANCE) -> np.ndarray:
    """(T, 4) the named cube's (x, y, z, yaw) at each frame of `episode`, a `vla collect` scripted
    demonstration, replayed in `scene` (of the episode's embodiment and task) by `teleop`."""
    from vla_core.sim.rollout import run_scripted_episode
    from vla_core.sim.tasks import sample_task

    metadata = episode.metadata
    missing = [key for key in ("seed", "task", "target") if key not in metadata]
    if missing or "checkpoint" in metadata:
        why = f"its metadata lacks {missing}" if missing else "a checkpoint drove part of it (a recovery episode)"
        raise ValueError(f"episode {episode.name!r} cannot be replayed for its object poses: {why}; only scripted "
                         f"`vla collect` demonstrations can")
    task = sample_task(metadata["task"], int(metadata["seed"]), scene.colours)
    if task.colour != metadata["target"]:
        raise ValueError(f"episode {episode.name!r}: seed {metadata['seed']} draws the {task.colour} cube here, its "
                         f"metadata says {metadata['target']}: the task sampling changed since it was recorded")
    rollout = run_scripted_episode(scene, task, teleop, int(metadata["seed"]), (),
                                   float(metadata.get("disturbance_rad", 0.0)))
    if rollout.state.shape != episode.state.shape:
        raise ValueError(f"episode {episode.name!r}: the replay has {len(rollout.state)} frames, the recording "
                         f"{len(episode.state)}: the scene or the teleoperator changed since it was recorded")
    drift = float(np.abs(rollout.state - episode.state).max())
    if drift > tolerance:
        raise ValueError(f"episode {episode.name!r}: the replayed joints differ from the recorded ones by up to "
                         f"{drift:.2g} (tolerance {tolerance}): the scene or the teleoperator changed since it was "
                         f"recorded")
    return rollout.object_poses


def replay_all(episodes: Iterable[Episode], spec: EmbodimentSpec, image_size: int = 224) -> list[np.ndarray]:
    """`replay_object_poses` of every episode, in one scene of `spec`'s robot per task, by the
    teleoperator that recorded it (consistent or varied: `vla collect --consistent`)."""
    from vla_core.sim.factory import make_scene, make_teleop

    teleops = {consistent: make_teleop(spec, consistent=consistent) for consistent in (False, True)}
    scenes: dict[str, TabletopScene] = {}
    try:
        poses = []
        for episode in episodes:
            task = episode.metadata.get("task", "pick_cube")
            if task not in scenes:
                scenes[task] = make_scene(spec.name, task, image_size)
            teleop = teleops[bool(episode.metadata.get("consistent_teleoperator", False))]
            poses.append(replay_object_poses(episode, scenes[task], teleop))
        return poses
    finally:
        for scene in scenes.values():
            scene.close()

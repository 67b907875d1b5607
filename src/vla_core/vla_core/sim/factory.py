"""The simulated scene and scripted teleoperator of each embodiment profile, by name."""
from __future__ import annotations

from vla_core.embodiment import EmbodimentSpec
from vla_core.kinematics import RobotKinematics
from vla_core.sim.scene import TabletopScene
from vla_core.sim.tasks import TASKS
from vla_core.sim.teleop import ScriptedTeleop

SIMULATED_EMBODIMENTS = ("so101", "aloha")


def make_scene(embodiment: str, task: str, image_size: int = 224) -> TabletopScene:
    """The embodiment's scene, with the bin when the task needs one."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASKS)}")
    with_bin = TASKS[task].needs_bin
    if embodiment == "so101":
        from vla_core.sim.pick_scene import PickCubeScene
        return PickCubeScene(image_size=image_size, with_bin=with_bin)
    if embodiment == "aloha":
        from vla_core.sim.aloha_scene import AlohaScene
        return AlohaScene(image_size=image_size, with_bin=with_bin)
    raise ValueError(f"no simulated scene for embodiment {embodiment!r}; expected one of {list(SIMULATED_EMBODIMENTS)}")


def make_teleop(spec: EmbodimentSpec, rate_hz: float | None = None, tremor: float = 0.002,
                consistent: bool = False) -> ScriptedTeleop:
    """The embodiment's scripted teleoperator at `rate_hz` (default: the profile's control rate);
    `consistent`: one speed, hover height and pause length for every plan, and no tremor."""
    rate = rate_hz or spec.control_rate_hz
    tremor = 0.0 if consistent else tremor
    if spec.name == "so101":
        from vla_core.sim.scripted_pick import ScriptedPickTeleop
        return ScriptedPickTeleop(RobotKinematics(spec), rate, tremor=tremor, consistent=consistent)
    if spec.name == "aloha":
        from vla_core.sim.scripted_aloha import ScriptedAlohaTeleop
        return ScriptedAlohaTeleop(RobotKinematics(spec), rate, tremor=tremor, consistent=consistent)
    raise ValueError(f"no scripted teleoperator for embodiment {spec.name!r}; "
                     f"expected one of {list(SIMULATED_EMBODIMENTS)}")

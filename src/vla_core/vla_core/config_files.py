"""Where embodiment profiles and node parameter files are found, and what a parameter file gives a node.

Every caller that needs a file of the workspace's config/ (a profile named on a command line or in
a node's `embodiment` parameter, `vla up`'s and `vla eval`'s default config/policy.yaml, `vla
record`'s config/record.yaml) asks `find_config_file`, so the search is written once:

1. vla_core's own `config/` package data: the profiles and parameter files ship inside the
   package, so a pip-installed vla_core finds them with no workspace and no ROS. In a source
   checkout (and colcon's symlink install) it is a link to the workspace's config/, so an
   edited profile is seen at once.
2. `share/vla_bringup/config` of each ament prefix, in AMENT_PREFIX_PATH order: a ROS install's
   bring-up package, where an overlay can add profiles of its own robots.

No ROS import: the ament prefixes are read from the environment, as `ros2 run` reads them.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path, PurePosixPath


def config_directories() -> list[Path]:
    """The configuration directories that exist, in search order (see the module docstring)."""
    directories = []
    packaged = Path(str(resources.files("vla_core").joinpath("config")))
    if packaged.is_dir():
        directories.append(packaged)
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidate = Path(prefix) / "share" / "vla_bringup" / "config"
        if candidate.is_dir() and candidate not in directories:
            directories.append(candidate)
    return directories


def find_config_file(relative: str) -> Path:
    """`relative` (a POSIX path such as "policy.yaml" or "embodiments/so101.yaml") in the first
    configuration directory that has it. Raises FileNotFoundError naming the directories searched."""
    directories = config_directories()
    for directory in directories:
        candidate = directory / PurePosixPath(relative)
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no config/{relative} in vla_core's package data or an installed vla_bringup "
                            f"(searched {[str(directory) for directory in directories]})")


def config_names(folder: str, suffix: str = ".yaml") -> list[str]:
    """The names (file stems) of the `suffix` files in `folder` of any configuration directory, sorted."""
    return sorted({path.stem for directory in config_directories() for path in (directory / folder).glob(f"*{suffix}")})


def node_parameters(path: Path, node_name: str) -> dict:
    """The `ros__parameters` a node called `node_name` takes from a ROS parameter file, in any
    namespace: the sections keyed `/**`, `node_name`, `/node_name` or `/**/node_name`, merged in
    file order as ROS applies them. Raises ValueError when no section names the node."""
    import yaml

    try:
        sections = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"{path} is not a readable parameter file ({error})") from None
    sections = sections if isinstance(sections, dict) else {}
    named = [key for key in sections if key in (node_name, f"/{node_name}", f"/**/{node_name}")]
    if not named:
        raise ValueError(f"{path} has no section for {node_name} (expected a key '/**/{node_name}' with "
                         f"ros__parameters; it has {sorted(map(str, sections))})")
    parameters: dict = {}
    for key, section in sections.items():
        if key == "/**" or key in named:
            parameters.update((section or {}).get("ros__parameters") or {})
    return parameters

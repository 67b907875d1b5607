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
    package_data={PACKAGE: ["py.typed"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=[
        "numpy>=1.26",
        "scipy>=1.11",
        "pyyaml>=6",
        "safetensors>=0.4",
        "torch>=2.4",
    ],
    extras_require={"hf": ["transformers>=5,<6", "peft>=0.13"]},
    zip_safe=False,
    entry_points={"console_scripts": ["vla = vla_core.cli:main"]},
)

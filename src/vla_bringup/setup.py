"""Installs the workspace's top-level launch/ and config/ (symlinked here) into share/vla_bringup, and the
vla_bringup Python package: the `vla up` and `vla record` subcommands, which start ROS executables."""
from glob import glob

from setuptools import setup

PACKAGE = "vla_bringup"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", sorted(glob("launch/*.launch.py"))),
        (f"share/{PACKAGE}/config", sorted(glob("config/*.yaml"))),
        (f"share/{PACKAGE}/config/embodiments", sorted(glob("config/embodiments/*.yaml"))),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="vla_ros maintainers",
    maintainer_email="maintainers@vla-ros.dev",
    description="Launch files and configuration for vla_ros, and the vla up / vla record commands.",
    license="Apache-2.0",
)

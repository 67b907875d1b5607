"""ament_python build of the vla_ros nodes."""
from setuptools import find_packages, setup

PACKAGE = "vla_policy_node"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="vla_ros maintainers",
    maintainer_email="maintainers@vla-ros.dev",
    description="rclpy nodes that run vla_core policies on a ROS 2 robot.",
    license="Apache-2.0",
    entry_points={"console_scripts": [
        "policy_node = vla_policy_node.policy_node:main",
        "executor_node = vla_policy_node.executor_node:main",
        "recorder_node = vla_policy_node.recorder_node:main",
    ]},
)

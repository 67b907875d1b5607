"""ament_python build of the vla_ros simulation nodes."""
from setuptools import find_packages, setup

PACKAGE = "vla_sim"

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
    description="MuJoCo robots behind ROS 2 topics, and scripted teleoperators that drive them.",
    license="Apache-2.0",
    entry_points={"console_scripts": [
        "sim_node = vla_sim.sim_node:main",
        "scripted_teleop = vla_sim.scripted_teleop:main",
        "record_demonstrations = vla_sim.record_demonstrations:main",
        "instructed_episode = vla_sim.instructed_episode:main",
    ]},
)

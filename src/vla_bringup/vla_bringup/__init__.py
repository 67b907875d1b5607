"""vla_bringup: the launch files and configuration of vla_ros, and the `vla` subcommands that start
its ROS executables (`vla up`, `vla record`: the launch files without `ros2 launch`).

They live here, on the ROS side, and not in the ROS-free vla_core library; the `vla` entry point
(vla_core.cli) finds them when this package is installed.
"""

"""Policy node + chunk executor for a robot whose driver and controllers are already running.

    ros2 launch vla_bringup policy.launch.py checkpoint:=/path/to/checkpoint embodiment:=so101 \
        command_interface:=joint_trajectory namespace:=robot1 use_sim_time:=false

`vla up` starts the same two executables with the same parameter file where `ros2 launch` is
not available.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = (
    ("checkpoint", "", "checkpoint directory (config.json, model.safetensors, ...)"),
    ("embodiment", "so101", "embodiment profile name or YAML path"),
    ("command_interface", "joint_trajectory", "joint_trajectory | servo | moveit"),
    ("use_sim_time", "false", "follow /clock"),
    ("namespace", "", "namespace of both nodes (one per robot)"),
    ("params_file", PathJoinSubstitution([FindPackageShare("vla_bringup"), "config", "policy.yaml"]),
     "parameter file of both nodes"),
)


def generate_launch_description() -> LaunchDescription:
    arg = LaunchConfiguration

    def as_string(name: str) -> ParameterValue:
        """The argument as a string parameter: launch_ros reads a bare substitution as YAML, so
        `checkpoint:=2024` would reach the node as an integer."""
        return ParameterValue(arg(name), value_type=str)

    common = {"embodiment": as_string("embodiment"),
              "use_sim_time": ParameterValue(arg("use_sim_time"), value_type=bool)}
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=text) for name, default, text in ARGUMENTS),
        Node(package="vla_policy_node", executable="policy_node", name="vla_policy", namespace=arg("namespace"),
             parameters=[arg("params_file"), {**common, "checkpoint": as_string("checkpoint")}], output="screen"),
        Node(package="vla_policy_node", executable="executor_node", name="vla_executor", namespace=arg("namespace"),
             parameters=[arg("params_file"), {**common, "command_interface": as_string("command_interface")}],
             output="screen"),
    ])

"""The episode recorder for a robot whose driver and teleoperation are already running.

    ros2 launch vla_bringup record.launch.py embodiment:=so101 output_dir:=~/vla_episodes \
        namespace:=robot1 use_sim_time:=false

Episodes are started, stopped and discarded through the node's services
(`~/start_episode`, `~/stop_episode`, `~/discard_episode`). `vla record` starts the same
executable with the same parameter file where `ros2 launch` is not available.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = (
    ("embodiment", "so101", "embodiment profile name or YAML path (its topics are recorded)"),
    ("output_dir", "~/vla_episodes", "directory of the episode bags, one rosbag2 directory each"),
    ("use_sim_time", "false", "stamp messages with /clock time"),
    ("namespace", "", "namespace of the recorder (the robot's)"),
    ("params_file", PathJoinSubstitution([FindPackageShare("vla_bringup"), "config", "record.yaml"]),
     "parameter file of the recorder"),
)


def generate_launch_description() -> LaunchDescription:
    arg = LaunchConfiguration

    def as_string(name: str) -> ParameterValue:
        """The argument as a string parameter: launch_ros reads a bare substitution as YAML, so
        `output_dir:=~` would reach the node as a null."""
        return ParameterValue(arg(name), value_type=str)

    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=text) for name, default, text in ARGUMENTS),
        Node(package="vla_policy_node", executable="recorder_node", name="vla_recorder", namespace=arg("namespace"),
             parameters=[arg("params_file"), {"embodiment": as_string("embodiment"),
                                              "output_dir": as_string("output_dir"),
                                              "use_sim_time": ParameterValue(arg("use_sim_time"), value_type=bool)}],
             output="screen"),
    ])

"""rclpy nodes of vla_ros: thin adapters between ROS messages and vla_core."""

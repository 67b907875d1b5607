"""MuJoCo robots behind ROS 2 topics, and scripted teleoperators."""

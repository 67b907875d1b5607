"""MuJoCo simulation of the shipped robots, without ROS: scenes, physics stepping, rendering."""

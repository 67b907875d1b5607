"""Demonstration data: episodes in memory, LeRobot v3.0 datasets on disk, training samples."""

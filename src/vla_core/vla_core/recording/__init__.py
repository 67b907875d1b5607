"""Recording demonstrations as rosbag2 (MCAP) episodes, without ROS: the recorder node's logic.

The node (vla_policy_node.recorder_node) only subscribes and hands serialized messages over;
everything about episodes lives here: metadata (`episode_metadata`), durable files
(`durable_files`), message definitions for the bag's schemas (`message_definitions`), the bag
writer (`bag_writer`), episode start/stop/discard with its refusals (`episode_recorder`) and
the recovery of episodes cut by a crash (`recovery`).
"""

"""Runtime logic of the ROS nodes, kept free of ROS so it can be tested and benchmarked alone:
chunk scheduling (synchronous, asynchronous with a committed prefix, temporal ensembling), the
safety filter, chunk decoding, and `control_step` and `policy_inputs`, which the nodes and
`vla eval` share, so what is evaluated is what runs on the robot."""

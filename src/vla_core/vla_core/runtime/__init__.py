"""Runtime logic of the ROS nodes, kept free of ROS so it can be tested and benchmarked alone:
chunk scheduling (synchronous, asynchronous with a committed prefix, temporal ensembling)."""

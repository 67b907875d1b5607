"""A helper node with its own executor thread, for callbacks that may take long.

Why not rclpy's MultiThreadedExecutor: in rclpy 9 (Kilted) it re-yields every task that was
submitted to its thread pool but has not started yet, so whenever all its threads are busy
(an inference, an IK solve) its spin loop burns a whole core and delays every other callback
behind it; coroutine callbacks starve the wait set the same way. Measured on this project's
2-core machine: sensor messages 2 s stale while a chunk was computed. Instead each node keeps
its fast callbacks (sensors, control timer, status) on a SingleThreadedExecutor, and puts the
slow ones (serving a chunk, running a goal, decoding an answer) on a side node spun by its own
single-threaded executor here. Names the side node serves are absolute: the name `~/<name>` has
for the main node, with the main node's remappings applied (the side node takes no command-line
arguments, or a `__node:=` rename would rename it too), so the interface is the same as if the
main node served it and `-r /vla_policy/get_action_chunk:=/robot1/chunks` moves it.

`ros2 node info /vla_policy` therefore does not list them: the ROS graph files an entity under the
node that created it, and an rclpy node's callbacks all run on the one executor it is added to
(rclpy has no rclcpp-style callback-group executors), so a service on the main node would wait
behind its sensor callbacks or they behind it. They are listed under the side node, named
`<main node>_<suffix>` (`/vla_policy_chunks`, `/vla_policy_goals`, `/vla_executor_answers`), which
offers no parameter services of its own (its use_sim_time is the main node's).

A callback that raises ends `spin_once`, and so this thread: the node would go on reporting
READY while nothing answers. The nodes guard their callbacks (`CauseLog.guard`), and should one
escape anyway the thread records it in `failure`, which the node reports as an error in its
status and /diagnostics instead of falling silent.

One exception needs threads: an action server whose execute callback runs until the goal ends
must still take cancel requests, so `threads > 1` gives that side node a MultiThreadedExecutor
with more threads than it will ever have blocked callbacks (its entities must then use a
reentrant callback group); its pool never fills, so the busy loop above never starts.
"""
from __future__ import annotations

import threading

import rclpy
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from .node_main import spin_until_shutdown


class SideExecutor:
    def __init__(self, parent: Node, suffix: str, threads: int = 1) -> None:
        use_sim_time = parent.get_parameter("use_sim_time").value
        self.node = rclpy.create_node(
            f"{parent.get_name()}_{suffix}", namespace=parent.get_namespace(), context=parent.context,
            use_global_arguments=False,  # a process-wide `-r __node:=...` must not rename this node too
            parameter_overrides=[Parameter("use_sim_time", value=use_sim_time)],
            start_parameter_services=False)  # its one parameter is the main node's (see above)
        self._parent = parent
        self._executor = (SingleThreadedExecutor(context=parent.context) if threads == 1
                          else MultiThreadedExecutor(num_threads=threads, context=parent.context))
        self._executor.add_node(self.node)
        self._started, self._stop = threading.Event(), threading.Event()
        self.thread_id = 0  # the spinning thread's native id, for scheduling changes
        self.failure: str | None = None  # why the thread died, when it did
        self._logger = parent.get_logger()
        self._thread = threading.Thread(target=self._spin, name=f"{parent.get_name()}_{suffix}", daemon=True)
        self._thread.start()
        self._started.wait()

    def name(self, relative: str) -> str:
        """The absolute name `~/<relative>` has for the main node, its remappings applied."""
        return self._parent.resolve_service_name(f"~/{relative}")

    def _spin(self) -> None:
        self.thread_id = threading.get_native_id()
        self._started.set()
        try:
            spin_until_shutdown(self._executor, self.node.context, self._stop)
        except Exception as error:  # noqa: BLE001 - the thread's last act: say why it is gone
            self.failure = f"the {self._thread.name} thread died: {type(error).__name__}: {error}"
            self._logger.error(self.failure)

    def destroy(self) -> None:
        """Stop the thread before its node goes away (a wait set on a destroyed node aborts)."""
        self._stop.set()
        self._executor.shutdown(timeout_sec=1.0)
        self._thread.join(timeout=2.0)
        self.node.destroy_node()

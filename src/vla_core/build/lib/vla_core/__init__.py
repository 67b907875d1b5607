"""vla_core: vision-language-action policies without ROS.

Importing the package is cheap on purpose (no torch, no numpy at import time): ROS nodes and
command-line tools import only the submodules they need.
"""

__version__ = "0.1.0"

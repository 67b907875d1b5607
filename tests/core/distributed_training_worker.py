"""One rank of the distributed training test: `torchrun --nproc_per_node 2 THIS_FILE OUTPUT_DIR`.

Every rank builds the same synthetic episodes and trains with the config of
`test_distributed_training.config_for`; the processes find each other through torchrun's
environment (gloo on the CPU).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.core.test_distributed_training import config_for, episodes  # noqa: E402
from vla_core.training.distributed import shutdown_distributed  # noqa: E402
from vla_core.training.loop import train  # noqa: E402

if __name__ == "__main__":
    try:
        train(config_for(sys.argv[1]), episodes(), device="cpu")
    finally:
        shutdown_distributed()

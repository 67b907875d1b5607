"""`python -m vla_core.cli ...` runs the `vla` command line (what `torchrun -m vla_core.cli train` needs)."""
import sys

from vla_core.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""vla_ros benchmarks: `python -m benchmarks [NAME ...]` (or `make bench`).

Each `bench_<name>.py` module here has `run(quick: bool) -> list[Measurement]`. The runner
writes `results/<name>.json` per module and regenerates `results/README.md`, the table people
read, with the machine each number came from.
"""

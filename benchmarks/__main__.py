"""Run benchmarks and write their results into benchmarks/results/.

    python -m benchmarks              # every bench_*.py module
    python -m benchmarks model_latency --quick
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import pkgutil
import sys
from pathlib import Path

from benchmarks.measure import Measurement, machine_description

RESULTS = Path(__file__).parent / "results"


def available() -> list[str]:
    package_dir = Path(__file__).parent
    return sorted(
        info.name.removeprefix("bench_")
        for info in pkgutil.iter_modules([str(package_dir)])
        if info.name.startswith("bench_")
    )


def write_result(name: str, measurements: list[Measurement], machine: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "benchmark": name,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "measurements": [m.as_dict() for m in measurements],
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")


def write_table() -> None:
    """Regenerate results/README.md from every results/*.json (also those of earlier runs)."""
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m benchmarks`); each row is the median with the 10th-90th",
        "percentile spread over the samples, on the machine named in its section.",
        "",
    ]
    for path in sorted(RESULTS.glob("*.json")):
        payload = json.loads(path.read_text())
        machine = payload["machine"]
        lines += [
            f"## {payload['benchmark']}",
            "",
            f"{payload['date']} on {machine.get('device') or machine['cpu']}, {machine['cores']} cores, "
            f"{machine['memory_gib']} GiB, Python {machine['python']}",
            "",
            "| measurement | median | p10 - p90 | min - max | samples | target | notes |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for m in payload["measurements"]:
            notes = ", ".join(f"{k}={v}" for k, v in m["notes"].items())
            lines.append(
                f"| {m['name']} | {m['median']:.4g} {m['unit']} | {m['p10']:.4g} - {m['p90']:.4g} | "
                f"{m['minimum']:.4g} - {m['maximum']:.4g} | {m['samples']} | {m['target']} | {notes} |"
            )
        lines.append("")
    (RESULTS / "README.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {available()})")
    parser.add_argument("--quick", action="store_true", help="fewer samples: a smoke run, not for the record")
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {available()}")
    machine = machine_description()
    for name in names:
        print(f"== {name}", flush=True)
        measurements = importlib.import_module(f"benchmarks.bench_{name}").run(quick=args.quick)
        for m in measurements:
            print(f"  {m.name}: median {m.median:.4g} {m.unit} (p10 {m.p10:.4g}, p90 {m.p90:.4g}, n={m.samples}) {m.notes}")
        if not args.quick and measurements:  # none: the benchmark said why it measured nothing
            write_result(name, measurements, machine)
    write_table()
    print(f"results in {RESULTS}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())

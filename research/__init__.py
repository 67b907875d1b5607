"""Research code, not part of vla_ros: one-off probes behind the findings in docs/experiments/.

Run from the repository root in the workspace environment (`source env.sh`), for example
`python -m research.probe_grounding --checkpoint checkpoints/default --embodiment so101`.
Nothing in src/ imports this package; tests/research/ tests what the findings rest on.
"""

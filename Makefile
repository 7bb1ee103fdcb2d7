# Set-up and entry points. `make demo` and `make test` install whatever is missing first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= train,dev
PIP := $(BIN)/python -m pip --disable-pip-version-check
DEMO_DIR ?= work/demo

.PHONY: install engine test demo clean

install: $(STAMP)

# torch is pinned by constraints.txt: on the project's machines pip takes the local CPU wheel.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt -e '.[$(EXTRAS)]'
	@touch $@

# A Docker engine for the container tests: use one that answers, else install Debian's
# docker.io and start dockerd (the way CI needs it: root, no systemd, no bridge network).
engine:
	@sh .ci/ensure-engine.sh

test: install engine
	$(BIN)/python -m pytest

demo: install engine
	$(BIN)/spider demo --out $(DEMO_DIR)

clean:
	rm -rf $(VENV) work .pytest_cache

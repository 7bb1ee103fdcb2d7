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

# Until the full demo (containers, registry, leaderboard) lands, the demo runs the data path.
demo: install
	$(BIN)/spider synth --out $(DEMO_DIR)/data --cases 6 --seed 1 --voxel-scale 2
	$(BIN)/spider data check $(DEMO_DIR)/data
	@echo "Demo data: $(DEMO_DIR)/data (synthetic SPIDER-layout release; see SYNTHETIC.txt there)"

clean:
	rm -rf $(VENV) work .pytest_cache

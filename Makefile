# Set-up and entry points. `make demo` and `make test` install whatever is missing first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= train,cluster,dev
PIP := $(BIN)/python -m pip --disable-pip-version-check
DEMO_DIR ?= work/demo

.PHONY: install system lint test demo clean

install: $(STAMP)

# torch is pinned by constraints.txt: on the project's machines pip takes the local CPU wheel.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt -e '.[$(EXTRAS)]'
	@touch $@

# Debian packages (docker.io, debootstrap, chromium, postgresql) and a Docker engine that
# answers: reuse what is there, else install and start dockerd (as CI needs: root, no systemd).
system:
	@sh .ci/ensure-system.sh

# ruff (pyflakes, pycodestyle, isort, bugbear) and mypy, as configured in pyproject.toml.
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# Linters first, then the suite; the registry tests also run against PostgreSQL when a server
# can be started (root).
test: install system lint
	SPIDER_TEST_POSTGRES_URL="$${SPIDER_TEST_POSTGRES_URL:-$$(sh .ci/ensure-postgres.sh)}" \
	$(BIN)/python -m pytest

# Synthetic data -> smoke baseline -> reference and flawed containers -> registry -> leaderboard.
demo: install system
	$(BIN)/spider demo --out $(DEMO_DIR)

clean:
	rm -rf $(VENV) work .pytest_cache

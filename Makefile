# The README's two commands: `make demo` (the local pipeline) and `make test` (the whole suite).
# Both bootstrap .venv on a fresh machine first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv lint lock bench figures clean

# The runtime comes from the lock first (exact versions, hash-checked), so the tests run on what the
# function archives install; then the project and its extras around it.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/txguard local up

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Every figure of the README, from the commands behind it (20-30 minutes: run it on a quiet machine).
figures: $(STAMP)
	$(BIN)/txguard figures run

lint: $(STAMP)
	$(BIN)/ruff check .

# requirements.lock from pyproject's runtime dependencies (infra/lockfile.py); UPGRADE=1 moves every pin.
lock: $(STAMP)
	$(BIN)/python -m infra.lockfile $(if $(UPGRADE),--upgrade)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache models/registry

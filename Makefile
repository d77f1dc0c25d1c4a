# The README's two commands: `make demo` (the local pipeline) and `make test` (the whole suite).
# Both bootstrap .venv on a fresh machine first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv lint lock bench figures clean browser

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

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# The console's browser tests drive Debian's Chromium through Playwright (Playwright's own browser
# download is not used). Installed here when missing and we may (root + apt-get); otherwise those
# tests skip with the reason, and fail under CI.
browser:
	@if [ -n "$$CHROMIUM_PATH" ] || [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium (Debian package) for the console's browser tests"; \
	  apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } || \
	  echo "could not install chromium: the browser tests will skip (and fail under CI)"; \
	else echo "chromium missing and not root: the browser tests will skip (and fail under CI)"; fi

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

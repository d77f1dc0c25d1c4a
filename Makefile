# The README's two commands: `make demo` (the local pipeline) and `make test` (the whole suite).
# Both bootstrap .venv on a fresh machine first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCKED := $(VENV)/.locked
STAMP := $(VENV)/.installed

.PHONY: demo test venv lint lock bench figures clean browser

# Everything comes from requirements-dev.lock (one resolution of the runtime and every extra,
# exported from uv.lock): exact versions, hash-checked, no dependency resolved again. So the tests
# run on what the function archives install, and a package published later cannot reach the venv.
$(LOCKED): requirements-dev.lock
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r requirements-dev.lock
	@touch $(LOCKED)

# Then the project itself, without resolving (its build backend, setuptools, is in the lock too).
# The editable install maps each subpackage of txguard to its folder when it is made, so a pull that
# adds or removes a subpackage (its parent folder's mtime moves) installs it again.
$(STAMP): $(LOCKED) pyproject.toml shared/txguard scripts/txguard models/txguard
	$(BIN)/python -m infra.lockfile check >/dev/null
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
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

# Every figure of the README, from the commands behind it (about two and a half hours: run it on a quiet machine).
figures: $(STAMP)
	$(BIN)/txguard figures run

lint: $(STAMP)
	$(BIN)/ruff check .

# uv.lock, requirements.lock and requirements-dev.lock from pyproject, resolved as of pyproject's cut-off
# date (infra/lockfile.py); UPGRADE=1 moves the date to today and every pin with it. Needs only the
# locked tools (uv, packaging), not the project: a pyproject that outgrew its lock can still be locked.
lock: $(LOCKED)
	$(BIN)/python -m infra.lockfile $(if $(UPGRADE),--upgrade)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache models/registry

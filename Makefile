# Two commands matter: `make run` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080
DATA   ?= ./data

.PHONY: run test lint setup setup-dev browser deploy-tools web-deps bench screenshots clean fuzz api-fuzz

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Stamp files make re-runs fast while still picking up dependency changes.
$(VENV)/.run-stamp: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev-stamp: pyproject.toml plugins/examples/ticketbox/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q -e plugins/examples/ticketbox
	touch $@

# The widget and console use tweetnacl from npm (pinned in package-lock.json).
node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

web-deps: node_modules/.stamp

# Debian's Chromium drives the browser tests (Playwright launches /usr/bin/chromium);
# Noto CJK fonts render the Chinese UI (no tofu in the screenshots).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || { echo "could not install chromium (need root or sudo)"; exit 1; }; }
	@fc-list :lang=zh 2>/dev/null | grep -q . || { \
	  echo "installing fonts-noto-cjk so the Chinese UI renders in the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null) \
	  || { echo "could not install fonts-noto-cjk (need root or sudo)"; exit 1; }; }

# nginx (for `nginx -t` on deploy/nginx.conf) and systemd-analyze (the unit file) in tests.
deploy-tools:
	@{ command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } && command -v systemd-analyze >/dev/null 2>&1 || { \
	  echo "installing nginx-light and systemd for the deploy/ tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light systemd >/dev/null) \
	  || { echo "could not install nginx-light/systemd (need root)"; exit 1; }; }

setup: $(VENV)/.run-stamp web-deps
setup-dev: $(VENV)/.dev-stamp web-deps browser deploy-tools

run: setup
	$(BIN)/cipherdesk serve --host $(HOST) --port $(PORT) --data-dir $(DATA)

# Type checker: strict for crypto/, auth/, gateway/policy/ and plugins/api.py (see
# [tool.mypy] in pyproject.toml), the default checks for the rest of the package.
MYPY_PATHS := gateway crypto auth plugins
lint: $(VENV)/.dev-stamp
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(MYPY_PATHS)

# The suite waits on browsers, sockets and child processes about half of its time:
# `make test PYTEST_WORKERS=2` runs it in two worker processes (pytest-xdist; one test file
# stays on one worker, so module fixtures are built once), ~17 instead of ~30 minutes on the
# 2-core development machine. CI runs it in one: under two, two browser tests failed once
# each (a focus, a message order) while two Chromiums ran at once; not the default until
# they are understood.
PYTEST_WORKERS ?= 0
test: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(MYPY_PATHS)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

# Coverage-guided fuzzing (atheris/libFuzzer) of every parser of outside bytes, one
# harness after the other; each stops at FUZZ_RUNS executions or FUZZ_SECONDS, whichever
# comes first. New corpus entries go to $(FUZZ_DIR)/<name>/, crashes to $(FUZZ_DIR)/.
# `make fuzz FUZZ_SECONDS=180 FUZZ_TARGETS="frames policy"` for a shorter pass.
FUZZ_RUNS    ?= 1000000
FUZZ_SECONDS ?= 600
FUZZ_DIR     ?= .fuzz
FUZZ_TARGETS ?= frames sealed identity policy config plugin_config
fuzz: setup-dev
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/$$t; \
	  echo "== fuzz $$t (runs=$(FUZZ_RUNS), max $(FUZZ_SECONDS)s)"; \
	  $(BIN)/python -m tests.fuzz.run $$t -runs=$(FUZZ_RUNS) -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=4096 -timeout=10 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/$$t- \
	    $(FUZZ_DIR)/$$t tests/fuzz/corpus/$$t || exit 1; \
	done

# schemathesis against a real gateway, much longer than the bounded run inside `make test`
# (tests/ops/test_api_fuzz.py; raise the counts further for a soak).
API_FUZZ_EXAMPLES ?= 100
API_FUZZ_STATEFUL ?= 150
api-fuzz: setup-dev
	CIPHERDESK_API_FUZZ_EXAMPLES=$(API_FUZZ_EXAMPLES) CIPHERDESK_API_FUZZ_STATEFUL=$(API_FUZZ_STATEFUL) \
	  $(BIN)/python -m pytest tests/ops/test_api_fuzz.py -q -s -p no:cacheprovider --timeout=3600

bench: setup-dev
	$(BIN)/python bench/relay.py

screenshots: setup-dev
	CIPHERDESK_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest tests/e2e -m browser -q

clean:
	rm -rf $(VENV) node_modules data .pytest_cache .fuzz

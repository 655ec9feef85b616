# fabmeter: the two set-up commands are `make demo` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint typecheck pytest test-faults bench system-packages test-packages clean

$(BIN)/fabmeter: pyproject.toml
	@$(MAKE) --no-print-directory system-packages
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[agent,server,dev]"
	@touch $@

# mosquitto and redis-server are started by the tests and the demo as private processes;
# they only need to be installed.
system-packages:
	@missing=""; \
	command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || missing="$$missing redis-server"; \
	$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# chromium runs the one real-browser test of the dashboard
test-packages:
	@[ -x /usr/bin/chromium ] || { echo "installing: chromium"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# make demo PORT=8080: the dashboard's port (default 8000; 0 for any free one)
demo: $(BIN)/fabmeter
	$(BIN)/fabmeter demo$(if $(PORT), --port $(PORT))

lint: $(BIN)/fabmeter
	$(BIN)/ruff check .

typecheck: $(BIN)/fabmeter
	$(BIN)/mypy broker billing agent dashboard fabmeter.py

pytest: $(BIN)/fabmeter test-packages
	$(BIN)/pytest -q -m "not faults"

test: lint typecheck pytest

test-faults: $(BIN)/fabmeter
	$(BIN)/pytest -q -m faults; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

bench: $(BIN)/fabmeter
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

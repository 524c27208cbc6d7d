# avatar-app: `make demo` renders the demo video, `make test` checks everything.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO := out/sweep.mp4

.PHONY: demo test lint system-deps clean

demo: $(INSTALLED)
	@mkdir -p $(dir $(DEMO))
	$(BIN)/avatar-app demo -o $(DEMO)
	@if [ -n "$${DISPLAY:-}" ]; then \
		$(BIN)/avatar-app-window $(DEMO); \
	else \
		echo "No display: the video is at $(CURDIR)/$(DEMO)"; \
	fi

test: system-deps $(INSTALLED) lint
	$(BIN)/python -m pytest -q

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

system-deps:
	scripts/install-system-deps.sh

$(BIN)/python:
	@$(PYTHON) -c "import sys; sys.exit(sys.version_info < (3, 11))" || \
		{ echo "avatar-app needs Python 3.11 or newer as $(PYTHON); try make PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV) || \
		{ echo "Could not create $(VENV): on Debian/Ubuntu run sudo apt-get install python3-venv"; exit 1; }

# Reinstall when the dependencies change. The default and dev extras never pull in torch.
$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $@

clean:
	rm -rf out build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

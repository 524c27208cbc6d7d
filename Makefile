# avatar-app: `make demo` opens the app (or, with no display, renders the demo video);
# `make test` checks everything.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
INSTALLED_DEV := $(VENV)/.installed-dev
DEMO := out/talk.mp4
DEMO_TEXT := Hello! I am a photo, and now I can talk. Pick your own portrait, press go live, \
	and I will speak with your voice. Mama, papa, who knew?

.PHONY: demo test lint system-deps test-system-deps clean

# With a display: the desktop app. Without one: the portrait speaks into a video file.
demo: system-deps $(INSTALLED)
	@if [ -n "$${DISPLAY:-}$${WAYLAND_DISPLAY:-}" ]; then \
		$(BIN)/avatar-app; \
	else \
		mkdir -p $(dir $(DEMO)) && \
		$(BIN)/avatar-app render --say "$(DEMO_TEXT)" -o $(DEMO) && \
		echo "No display: the video is at $(CURDIR)/$(DEMO)"; \
	fi

test: test-system-deps $(INSTALLED_DEV) lint
	$(BIN)/python -m pytest -q

lint: $(INSTALLED_DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

system-deps:
	scripts/install-system-deps.sh

test-system-deps:
	scripts/install-system-deps.sh --test

$(BIN)/python:
	@$(PYTHON) -c "import sys; sys.exit(sys.version_info < (3, 11))" || \
		{ echo "avatar-app needs Python 3.11 or newer as $(PYTHON); try make PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV) || \
		{ echo "Could not create $(VENV): on Debian/Ubuntu run sudo apt-get install python3-venv"; exit 1; }

# Reinstall when the dependencies change. The app and its window need no torch; the tests
# also train a tiny lip-sync model, so they install the train extra (torch's CPU build).
$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[gui,say]"
	@touch $@

$(INSTALLED_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev,train]"
	@touch $@

clean:
	rm -rf out build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

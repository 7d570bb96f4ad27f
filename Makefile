# The two commands of the README. Both set up .venv on first use (Python 3.11+; torch 2.13.0, CPU).
#   make demo   - a full local release: two model versions, blue -> green, batch refresh
#   make test   - the test suite
#   make lock   - regenerate requirements/release.txt, the hashed lock the release workflows install
#   make azurite - install Azurite (Azure's storage emulator, for tests/azure_wire) into .tools/azurite
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
AZURITE_DIR := .tools/azurite
AZURITE     := $(AZURITE_DIR)/node_modules/.bin/azurite-blob

.PHONY: setup demo test lint lock clean azurite

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mlops demo

test: $(STAMP) $(AZURITE)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# Azurite, Microsoft's storage emulator, that the wire tests (tests/azure_wire) start on free loopback
# ports: pinned in tools/azurite/package-lock.json (integrity hashes) and installed with `npm ci` into
# .tools/azurite, so a fresh clone gets the same tree. 3.35.0 is the newest release whose `engines`
# accept this machine's Node 20.
$(AZURITE): tools/azurite/package.json tools/azurite/package-lock.json
	@command -v npm >/dev/null || { echo "make: npm (Node.js 20+) is needed to install Azurite for the wire tests" >&2; exit 2; }
	mkdir -p $(AZURITE_DIR)
	cp tools/azurite/package.json tools/azurite/package-lock.json $(AZURITE_DIR)/
	cd $(AZURITE_DIR) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

azurite: $(AZURITE)

# The hashed lock of pyproject.toml's runtime dependencies (and its build backend) that every GitHub
# job able to log in to Azure installs with --require-hashes. torch is the CPU wheel: pip-compile must
# see torch's CPU index (or a folder holding that wheel, PIP_FIND_LINKS); pip's own config is ignored
# so no machine-local index ends up in the file. tests/workflows/test_lock.py checks it against
# pyproject.toml offline.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
lock: $(STAMP)
	PIP_CONFIG_FILE=/dev/null PIP_EXTRA_INDEX_URL=$(TORCH_CPU_INDEX) $(VENV)/bin/pip-compile --quiet \
	  --generate-hashes --allow-unsafe --all-build-deps --strip-extras --no-emit-index-url \
	  --no-emit-find-links --output-file requirements/release.txt pyproject.toml

lint: $(STAMP)
	$(VENV)/bin/ruff check mlops tests benchmarks load_tests endpoints

clean:
	-$(VENV)/bin/mlops local down 2>/dev/null
	rm -rf $(VENV) .mlops .tools

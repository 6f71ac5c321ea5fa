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

.PHONY: help install book test paper stability clean clean-book

help:
	@echo "make book    install, execute every chapter at book scale, render $(BUILD)/html (SCALE=smoke for a quick build)"
	@echo "make test    install, run the unit tests and every notebook under nbval at smoke scale"
	@echo "make paper   run every notebook at paper scale with papermill into $(PAPER_OUT)/ (NB=one.ipynb or a chapter key, DEVICE=cuda)"
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
book: $(STAMP)
	@key="$(SCALE) $$(cat requirements.txt pyproject.toml $$(find hepnb -name '*.py' | sort) | sha256sum)"; \
	if [ "$$(cat $(BUILD)/.hepnb-inputs 2>/dev/null)" != "$$key" ]; then \
		echo "hepnb code, requirements or scale changed: clearing the execution cache"; \
		rm -rf $(BUILD)/.jupyter_cache $(BUILD)/jupyter_execute; \
	fi; \
	HEPNB_SCALE=$(SCALE) $(VENV)/bin/jupyter-book build . --builder html --warningiserror --keep-going \
		|| exit 1; \
	echo "$$key" > $(BUILD)/.hepnb-inputs
	@echo "book at $(BUILD)/html/index.html (scale $(SCALE))"

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

# Do the chapter's verdicts survive a change of seed? (benchmarks/claims_stability.py; SCALE as above)
CHAPTER ?= adversarial
stability: $(STAMP)
	$(PY) benchmarks/claims_stability.py --chapter $(CHAPTER) --scale $(SCALE)

clean-book:
	rm -rf $(BUILD)

clean: clean-book
	rm -rf .pytest_cache
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +

# talklib: the two commands of the quick start are `make reproduce` and `make test`.
# Both build .venv from requirements.txt first (a no-op when it is there and current).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.talklib-installed
PRESET ?= small
RUN    ?= runs/$(PRESET)

.PHONY: venv reproduce test unit notebooks book lab clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name talklib --display-name "talklib" >/dev/null
	@touch $(STAMP)
	@echo "venv ready: $(VENV) (Jupyter kernel 'talklib' registered inside it)"

## the main job: every notebook, small preset, embedded synthetic speaker -> $(RUN)/report.html
reproduce: $(STAMP)
	$(PY) -m talklib reproduce --preset $(PRESET) --out $(RUN)

## unit tests; every notebook under nbval (small preset), kept as a run in runs/nbval; the book from it;
## notebooks 02 and 04 again with seed 1 (their claims must not hang on one seed; 03 and 05-10, whose asserts hold over
## seeds 0-4 (09: 0-2) with the margins in benchmarks/small_preset_seeds.md, are left out to keep make test within 30 min)
test: $(STAMP)
	$(PY) -m pytest -q tests
	rm -rf runs/nbval
	$(PY) -m talklib reproduce --preset small --out runs/nbval --prepare-only runs/nbval/prepared
	$(PY) -m pytest -q -p tests.nbcapture --capture-notebooks runs/nbval/notebooks --nbval-lax runs/nbval/prepared
	$(PY) -m pytest -q tests/book_check.py
	$(PY) -m pytest -q tests/seed_check.py

unit: $(STAMP)
	$(PY) -m pytest -q tests

book: $(STAMP)
	@test -f $(RUN)/run.json || $(PY) -m talklib reproduce --preset $(PRESET) --out $(RUN)
	$(PY) -m talklib book --run $(RUN)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root,) notebooks/

clean:
	rm -rf runs book/_build book/notebooks notebooks/*.ipynb

# Two commands do everything on a fresh machine (see README.md):
#   make book   - set up .venv, build the HTML book, executing every chapter at the
#                 default scale (book on a CPU, paper on a GPU)
#   make test   - set up .venv, run the unit tests, every notebook with nbval at the
#                 smoke scale and a smoke-scale -W book build
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
JB     := $(VENV)/bin/jupyter-book
STAMP  := $(VENV)/.refimpl-installed
# torch first, pinned: a local CPU wheel on the build machines, PyPI elsewhere. The
# project's own `torch>=2.2` is then already satisfied, so no second torch comes in.
TORCH  ?= torch==2.13.0

.PHONY: book test unit notebooks book-smoke clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "$(TORCH)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

# REFIMPL_PROGRESS=0: no progress bars in the rendered pages (they are on by
# default when a reader runs a notebook).
export REFIMPL_PROGRESS ?= 0

book: $(STAMP)
	$(JB) build . -W --keep-going
	@echo "Open _build/html/index.html"

test: unit notebooks book-smoke

unit: $(STAMP)
	$(PY) -m pytest tests -q

notebooks: $(STAMP)
	REFIMPL_SCALE=smoke $(PY) -m pytest --nbval-lax --nbval-current-env \
	  --nbval-cell-timeout=600 --nbval-sanitize-with sanitize.cfg -p no:python -q book/

# A separate output folder keeps the smoke-scale execution cache apart from the
# default-scale one that `make book` uses.
book-smoke: $(STAMP)
	REFIMPL_SCALE=smoke $(JB) build . -W --keep-going --path-output _build/smoke

clean:
	rm -rf _build

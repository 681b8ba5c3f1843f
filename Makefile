# Two commands do everything on a fresh machine (see README.md):
#   make book   - set up .venv, build the HTML book, executing every chapter at the
#                 default scale (book on a CPU, paper on a GPU)
#   make test   - set up .venv, run the unit tests, every notebook with nbval at the
#                 smoke scale, a smoke-scale -W book build and a headless-Chromium
#                 test of that build with the network off
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
JB     := $(VENV)/bin/jupyter-book
STAMP  := $(VENV)/.refimpl-installed
# torch first, pinned: a local CPU wheel on the build machines, PyPI elsewhere. The
# project's own `torch>=2.2` is then already satisfied, so no second torch comes in.
TORCH  ?= torch==2.13.0
# MathJax 3, pinned, from the npm registry: the book serves it itself, so math
# renders with no network (mathjax_path in _config.yml points here).
MATHJAX_VERSION := 3.2.2
MATHJAX_SHA256  := 1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09
MATHJAX := _vendor/static/mathjax/tex-mml-chtml.js
CHROMIUM ?= chromium

.PHONY: book test unit notebooks book-smoke browser mathjax chromium clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "$(TORCH)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

# REFIMPL_PROGRESS=0: no progress bars in the rendered pages (they are on by
# default when a reader runs a notebook).
export REFIMPL_PROGRESS ?= 0

mathjax: $(MATHJAX)

$(MATHJAX):
	command -v npm >/dev/null || { apt-get update && apt-get install -y --no-install-recommends npm; }
	rm -rf _vendor/npm && mkdir -p _vendor/npm _vendor/static
	cd _vendor/npm && npm pack --silent "mathjax@$(MATHJAX_VERSION)"
	echo "$(MATHJAX_SHA256)  _vendor/npm/mathjax-$(MATHJAX_VERSION).tgz" | sha256sum -c -
	tar -xzf _vendor/npm/mathjax-$(MATHJAX_VERSION).tgz -C _vendor/npm
	rm -rf _vendor/static/mathjax && mv _vendor/npm/package/es5 _vendor/static/mathjax
	rm -rf _vendor/npm

# Debian's Chromium for the browser test (Playwright drives it; it never downloads
# a browser of its own).
chromium:
	command -v $(CHROMIUM) >/dev/null || { apt-get update && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

book: $(STAMP) $(MATHJAX)
	$(JB) build . -W --keep-going
	@echo "Open _build/html/index.html"

test: unit notebooks book-smoke browser

unit: $(STAMP)
	$(PY) -m pytest tests -q --ignore=tests/browser

notebooks: $(STAMP)
	REFIMPL_SCALE=smoke $(PY) -m pytest --nbval-lax --nbval-current-env \
	  --nbval-cell-timeout=600 --nbval-sanitize-with sanitize.cfg -p no:python -q book/

# A separate output folder keeps the smoke-scale execution cache apart from the
# default-scale one that `make book` uses.
book-smoke: $(STAMP) $(MATHJAX)
	REFIMPL_SCALE=smoke $(JB) build . -W --keep-going --path-output _build/smoke

# The smoke build as a reader's browser shows it, with every network request
# blocked: pages load, math is typeset, tables are tables, images and internal
# links resolve, Colab links and solution dropdowns work. Screenshots of every
# chapter go to _build/smoke/screenshots/.
browser: book-smoke chromium
	BOOK_HTML=_build/smoke/_build/html CHROMIUM=$$(command -v $(CHROMIUM)) \
	  $(PY) -m pytest tests/browser -q -p no:cacheprovider

clean:
	rm -rf _build _vendor

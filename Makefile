# Two commands set everything up on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv graphviz test test-slow demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml tinygrad_rnn/__init__.py viz/__init__.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[viz,test]'
	@touch $@

# Graphviz's `dot` renders the drawings; install it with apt when we are root, else say how.
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Graphviz (dot) with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; \
	  else \
	    echo "Graphviz's 'dot' program is missing: install it with 'sudo apt-get install graphviz'"; \
	    echo "(macOS: 'brew install graphviz'; conda: 'conda install graphviz'), then run make again."; \
	    exit 1; \
	  fi; }

# Tests run BLAS on one thread: their small matrices gain nothing from more, and on a shared
# machine OpenBLAS's spinning workers slow them several times (benchmarks keep the default).
test: venv graphviz
	OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -q

# The slow checks: every tutorial at full size (a minute or two).
test-slow: venv graphviz
	OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -q -m slow

demo: venv graphviz
	$(VENV)/bin/tinygrad-rnn demo --out out/

bench: venv
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) out .pytest_cache build *.egg-info

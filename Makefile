# One command each on a fresh machine: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Tests compile hundreds of small programs and run each briefly: XLA's backend optimizations
# cost more compile time than they save (suite 11 min against 16 min with them).
XLA_TEST_FLAGS := --xla_force_host_platform_device_count=4 --xla_backend_optimization_level=0

.PHONY: venv test demo clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Two worker processes, whole modules each, so each holds about half the compiled programs: one
# process compiling the whole suite crashed inside XLA's compiler late in the run (suspected:
# the kernel's limit of 65,530 memory mappings per process). The tests and the package's
# docstring examples (their shared names come from conftest.py) run in one session.
TEST_PATHS ?= tests bayesjax
test: $(STAMP)
	XLA_FLAGS="$(XLA_TEST_FLAGS)" $(PY) -m pytest -q -n 2 --dist loadfile --doctest-modules $(TEST_PATHS) $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/bayesjax sweep --dataset digits --method sgld --temperatures 1e-3,1e-2,1e-1,1 --seeds 0,1 \
		--steps 1000 --augment both --out results/demo/sweep
	$(VENV)/bin/bayesjax compare --dataset digits --out results/demo/compare

clean:
	rm -rf $(VENV) results .pytest_cache

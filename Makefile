# One command each on a fresh machine: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Tests compile hundreds of small programs and run each briefly: XLA's backend optimizations
# cost more compile time than they save (suite 11 min against 16 min with them).
XLA_TEST_FLAGS := --xla_force_host_platform_device_count=4 --xla_backend_optimization_level=0

.PHONY: venv test demo docs clean fashion-mnist

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

# The API reference and the guides (notebooks/*.py) as a static site in site/, built offline with
# warnings as errors: every docstring cross-reference must resolve (docs/sphinx_roles.py).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# Fashion-MNIST's 4 IDX files from Debian/Ubuntu's package dataset-fashion-mnist, into
# /usr/share/datasets/fashion-mnist where bj.data.load("fashion_mnist") looks. Nothing to do when
# they are there (or in $$BAYESJAX_DATA); elsewhere without apt-get, it says how to get them and fails.
FMNIST_FILES := train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz
FMNIST_DIRS := /usr/share/datasets/fashion-mnist $(if $(BAYESJAX_DATA),$(BAYESJAX_DATA) $(BAYESJAX_DATA)/fashion-mnist)
fashion-mnist:
	@for dir in $(FMNIST_DIRS); do \
		missing=0; for f in $(FMNIST_FILES); do [ -f "$$dir/$$f" ] || missing=1; done; \
		if [ $$missing = 0 ]; then echo "Fashion-MNIST is installed in $$dir"; exit 0; fi; \
	done; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "Fashion-MNIST is not installed and apt-get is not available: put its 4 files ($(FMNIST_FILES))"; \
		echo "from https://github.com/zalandoresearch/fashion-mnist in a folder and set BAYESJAX_DATA to it."; \
		exit 1; \
	fi; \
	sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	echo "Installing dataset-fashion-mnist with apt-get"; \
	$$sudo apt-get install -y dataset-fashion-mnist || { $$sudo apt-get update && $$sudo apt-get install -y dataset-fashion-mnist; }

clean:
	rm -rf $(VENV) results .pytest_cache

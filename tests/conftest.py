"""Test session set-up: no persistent compilation cache (the 4 forced CPU devices are set in the root conftest.py).

``helpers/distributed_worker.py`` is a script that starts ``jax.distributed``
when imported: it is run by tests/test_distributed.py, never collected.

Tests call the ``bayesjax`` command in-process; without ``BAYESJAX_CACHE=""``
it would point JAX's persistent cache at the user's folder for the rest of
the session (and jaxlib 0.10.2 crashed writing one of the later executables
there).
"""
import os

os.environ.setdefault("BAYESJAX_CACHE", "")

collect_ignore = ["helpers/distributed_worker.py"]

"""Several processes driving one run (``jax.distributed``): process 0 decides and writes, the others follow.

Every process runs the same driver on its own devices of one global mesh, so
every process must make the same calls in the same order. Where the host
matters (a clock, a file), process 0 alone decides or writes, and a
collective tells the others the outcome, which also makes them wait for it.
With one process both functions are plain calls.
"""
from __future__ import annotations

from typing import Callable

import jax
import numpy as np


def process_zero_says(flag: bool) -> bool:
    """Process 0's ``flag``, on every process (a collective); with one process, ``flag``."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.int32(flag)))


def on_process_zero(task: Callable[[], None], what: str) -> None:
    """Runs ``task`` on process 0 alone; every process returns once it is done, and raises if it failed.

    Process 0 raises the task's own error; the others raise RuntimeError
    saying that process 0 could not do ``what``.
    """
    failed = None
    if jax.process_index() == 0:
        try:
            task()
        except Exception as error:  # every process must reach the collective below, whatever went wrong
            failed = error
    if process_zero_says(failed is not None):
        raise failed or RuntimeError(f"process 0 could not {what} (its error says why)")

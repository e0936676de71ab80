"""Progress bars fed from inside ``jit`` by host callbacks.

A compiled computation carries only an integer bar id; the host keeps the
tqdm bar under that id, so turning the bar on or off never recompiles.
"""
from __future__ import annotations

import contextlib
import itertools
from typing import Iterator

import jax

_bars: dict[int, "Bar"] = {}
_ids = itertools.count()


class Bar:
    """A registered bar: ``offset`` is added to the steps reported from the device."""

    def __init__(self, bar_id: int, bar):
        self.id, self.bar, self.offset = bar_id, bar, 0

    def advance_to(self, position: int) -> None:
        if self.bar is not None:
            self.bar.update(position - self.bar.n)


def _tick(bar_id, step) -> None:
    entry = _bars.get(int(bar_id))
    if entry is not None:
        entry.advance_to(entry.offset + int(step))


def report(bar_id, step, every: int) -> None:
    """Inside jit: tells bar ``bar_id`` that ``step`` steps are done, every ``every`` steps."""
    jax.lax.cond(step % every == 0, lambda: jax.debug.callback(_tick, bar_id, step), lambda: None)


@contextlib.contextmanager
def bar(enabled: bool, total: int, description: str) -> Iterator[Bar]:
    """A tqdm bar registered for :func:`report` (id -1, a no-op, when disabled)."""
    if not enabled:
        yield Bar(-1, None)
        return
    from tqdm.auto import tqdm

    entry = Bar(next(_ids), tqdm(total=total, desc=description, leave=False))
    _bars[entry.id] = entry
    try:
        yield entry
    finally:
        entry.advance_to(total)
        entry.bar.close()
        del _bars[entry.id]

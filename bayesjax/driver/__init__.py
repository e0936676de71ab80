"""The driver behind :func:`bayesjax.run`, above every inference method (no method imports it).

:mod:`~bayesjax.driver.scan` is the compiled loop, :mod:`~bayesjax.driver.posterior`
what a run returns, :mod:`~bayesjax.driver.chunked` drives the loop in chunks
between a progress bar (:mod:`~bayesjax.driver.progress`) and resumable
snapshots (:mod:`~bayesjax.driver.checkpoint`).
"""

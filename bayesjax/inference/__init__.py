"""Inference methods, one module per family (subpackages ``mcmc``, ``vi``, ``laplace``, ``online`` for the larger
ones), each with ``init``/``step``/``sample``/``build``."""

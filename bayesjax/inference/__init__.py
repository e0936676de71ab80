"""Inference methods, one module per family, each with ``init``/``step``/``sample``/``build``."""

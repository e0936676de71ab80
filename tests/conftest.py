"""Test session set-up: 4 forced CPU devices (so sharding is tested on CPU), no persistent compilation cache.

Tests call the ``bayesjax`` command in-process; without ``BAYESJAX_CACHE=""``
it would point JAX's persistent cache at the user's folder for the rest of
the session (and jaxlib 0.10.2 crashed writing one of the later executables
there).
"""
import os

if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
os.environ.setdefault("BAYESJAX_CACHE", "")

"""What every benchmark script shares: timing, child processes and facts about the machine.

Imports only the standard library, so that a script may import it before it
sets ``XLA_FLAGS`` (the host's device split is fixed when JAX starts) and a
child running under another interpreter (a PyTorch environment without JAX)
may use it. :func:`machine_facts` imports JAX and bayesjax when called.

A child process is a script run with arguments; it reports by printing one
line, :data:`CHILD_TAG` followed by JSON (:func:`emit`), which
:func:`run_child` reads back.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, NamedTuple

CHILD_TAG = "BENCH_JSON "


class Timing(NamedTuple):
    """One call: what it returned, its wall seconds and the CPU seconds of this process (all threads)."""

    result: Any
    wall_s: float
    cpu_s: float


def timed(fn: Callable, *args, **kwargs) -> Timing:
    """Calls ``fn(*args, **kwargs)`` once and times it.

    CPU time is reported beside wall time because it suffers less from other
    processes on a shared machine. ``fn`` must block until its work is done
    (``jax.block_until_ready``).
    """
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return Timing(result, time.perf_counter() - wall, time.process_time() - cpu)


def summary(times: list[float]) -> dict:
    """The best, the median and every one of repeated timings (seconds)."""
    return {"min_s": min(times), "median_s": statistics.median(times), "all_s": times}


class Child(NamedTuple):
    """A finished child process: its JSON result (``None`` if it failed), wall seconds from spawn to exit, error text."""

    result: dict | None
    wall_s: float
    error: str


def run_child(script: str, args: list[str], python: str = sys.executable, env: dict | None = None,
              timeout: float = 600) -> Child:
    """Runs ``python script *args`` and reads the result it :func:`emit`-ted.

    Args:
      script: the script's path.
      args: its command-line arguments.
      python: the interpreter (another environment's, e.g. one with PyTorch).
      env: the child's environment (default: this process's).
      timeout: seconds before the child is stopped and counted as failed.

    Returns:
      A :class:`Child`; on failure its ``result`` is ``None`` and ``error``
      holds the tail of the child's stderr (or stdout); stopped at
      ``timeout``, ``error`` is ``"timed out"`` and ``result`` what the child
      emitted last before it (``None`` if nothing).
    """
    command = [python, os.path.abspath(script), *args]
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as error:  # what the child emitted before it was stopped (a partial result)
        stdout = error.stdout.decode() if isinstance(error.stdout, bytes) else (error.stdout or "")
        return Child(last_emitted(stdout), time.perf_counter() - start, "timed out")
    except OSError as error:
        return Child(None, time.perf_counter() - start, f"could not run {python}: {error}")
    wall = time.perf_counter() - start
    result = last_emitted(proc.stdout)
    if proc.returncode != 0 or result is None:
        return Child(None, wall, (proc.stderr or proc.stdout)[-2000:])
    return Child(result, wall, "")


def last_emitted(stdout: str) -> dict | None:
    """The last result a child :func:`emit`-ted on ``stdout``, or ``None``."""
    result = None
    for line in stdout.splitlines():
        if line.startswith(CHILD_TAG):
            result = json.loads(line[len(CHILD_TAG):])
    return result


def emit(result: dict) -> None:
    """Reports a child's result to the :func:`run_child` that started it."""
    print(CHILD_TAG + json.dumps(result, default=str), flush=True)


def loadavg() -> str:
    """The 1, 5 and 15-minute load averages, as text ("n/a" where the OS has none)."""
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def cpu_name() -> str:
    """The CPU's model name."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_revision() -> str:
    """The short commit of this checkout, noting uncommitted changes under ``bayesjax/``."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "bayesjax"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + (" (bayesjax/ modified)" if dirty else "") if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB: Linux's ``VmHWM``, else ``ru_maxrss``.

    Not ``ru_maxrss`` where ``VmHWM`` exists: Linux carries ``ru_maxrss``
    across ``exec``, so a child started by a parent holding 600 MB reported
    at least 600 MB (measured: 313 MB for a bare interpreter under a 300 MB
    parent, whose ``VmHWM`` was 13.5 MB).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # bytes on macOS


def machine_facts() -> dict:
    """Platform, CPU, JAX and its devices, bayesjax, the commit and the load now (imports JAX)."""
    import jax

    import bayesjax

    try:
        import jaxlib

        jaxlib_version = jaxlib.__version__
    except (ImportError, AttributeError):
        jaxlib_version = "unknown"
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_name(),
        "cpu_count": f"{os.cpu_count()} ({bayesjax.sharding.usable_cores()} usable)",
        "jax": jax.__version__,
        "jaxlib": jaxlib_version,
        "device": ", ".join(f"{d.platform}:{d.device_kind}" for d in jax.devices()),
        "bayesjax": getattr(bayesjax, "__version__", "unknown"),
        "git": git_revision(),
        "load_start": loadavg(),
    }

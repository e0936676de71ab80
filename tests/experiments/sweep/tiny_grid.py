"""A tiny sweep shared by the sweep's tests and the command's: 3 temperatures x 2 seeds, 60 steps, digits MLP 8."""
import numpy as np

from bayesjax.experiments import sweep

CONFIG = sweep.SweepConfig(hidden=(8,), temperatures=(1e-3, 0.1, 1.0), seeds=(0, 1), num_steps=60, batch_size=64,
                           burnin=30, thin=10, num_chains=2, num_predictive_samples=3)
CLI_ARGS = ["sweep", "--hidden", "8", "--temperatures", "1e-3,0.1,1", "--seeds", "0,1", "--steps", "60",
            "--batch-size", "64", "--burnin", "30", "--thin", "10", "--samples", "3", "--quiet"]
VALUES = sweep.COLUMNS


def table(records):
    return np.array([[r[k] for k in VALUES] for r in records], np.float64)


def count_step_traces(monkeypatch, method: str) -> list:
    """Patches ``method``'s algorithm so that every trace of its step appends to the returned list."""
    traces = []
    original = sweep.METHODS[method]

    def counting(lj, settings):
        algo = original.build(lj, settings)

        def step(key, state, batch):
            traces.append(1)
            return algo.step(key, state, batch)

        return algo._replace(step=step)

    monkeypatch.setitem(sweep.METHODS, method, original._replace(build=counting))
    return traces

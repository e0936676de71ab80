"""Temperature x seed sweeps: one compile, cell-by-cell equality, kill-and-resume, honest temperatures."""
import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayesjax as bj
from bayesjax import cli, sweep
from bayesjax.inference.laplace import from_state
from bayesjax.inference.laplace.posterior import marginal_variance
from bayesjax.inference.map import MAPState

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIG = sweep.SweepConfig(hidden=(8,), temperatures=(1e-3, 0.1, 1.0), seeds=(0, 1), num_steps=60, batch_size=64,
                           burnin=30, thin=10, num_chains=2, num_predictive_samples=3)
CLI_ARGS = ["sweep", "--hidden", "8", "--temperatures", "1e-3,0.1,1", "--seeds", "0,1", "--steps", "60",
            "--batch-size", "64", "--burnin", "30", "--thin", "10", "--samples", "3", "--quiet"]
VALUES = sweep.METRICS + sweep.DIAGNOSTICS


def table(records):
    return np.array([[r[k] for k in VALUES] for r in records], np.float64)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The grid in one uninterrupted sweep, two cells per compiled call."""
    out = tmp_path_factory.mktemp("reference")
    with pytest.warns(UserWarning, match="nominal temperature"):
        return sweep.run_sweep(CONFIG, out, progress=False, cells_per_chunk=2)


def count_step_traces(monkeypatch, method: str) -> list:
    """Patches ``method``'s algorithm so that every trace of its step appends to the returned list."""
    traces = []
    original = sweep.METHODS[method]

    def counting(lj, config):
        algo = original.build(lj, config)

        def step(key, state, batch, *, log_joint):
            traces.append(1)
            return algo.step(key, state, batch)

        return algo._replace(step=bj.base.bind_log_joint(step, lj))

    monkeypatch.setitem(sweep.METHODS, method, original._replace(build=counting))
    return traces


def test_the_grid_compiles_the_step_once(tmp_path, monkeypatch):
    traces = count_step_traces(monkeypatch, "sgld")
    config = dataclasses.replace(CONFIG, step_size=0.9e-4)  # not compiled by another test yet
    with pytest.warns(UserWarning):
        records = sweep.run_sweep(config, tmp_path, progress=True, cells_per_chunk=2)  # 3 calls of one compile
    assert len(records) == 6 and len(traces) == 1


def test_cells_equal_cells_run_one_by_one(reference, tmp_path):
    with pytest.warns(UserWarning):
        alone = sweep.run_sweep(CONFIG, tmp_path, progress=False, cells_per_chunk=1)
    assert [(r["temperature"], r["seed"]) for r in alone] == CONFIG.cells()
    np.testing.assert_allclose(table(alone), table(reference), rtol=2e-3, atol=2e-3)


def test_records_are_complete_and_sensible(reference):
    values = table(reference)
    assert np.all(np.isfinite(values[:, : len(sweep.METRICS)]))
    by_name = {k: values[:, i] for i, k in enumerate(VALUES)}
    assert np.all((by_name["accuracy"] > 0.5) & (by_name["accuracy"] <= 1))
    assert np.all(np.isnan(by_name["kinetic_temperature"]))  # SGLD has no momentum
    # Minibatch noise dominates the injected noise at T = 1e-3 and not at T = 1 (and is reported as such).
    ratio = {(r["temperature"], r["seed"]): r["grad_noise_ratio"] for r in reference}
    assert ratio[(1e-3, 0)] > 1 > 0.1 > ratio[(1.0, 0)]


@pytest.mark.parametrize("method", ["meanfield_vi", "laplace_diag"])
def test_vi_and_laplace_compile_once_and_equal_their_cells_run_one_by_one(tmp_path, monkeypatch, method):
    """The grid in 2 chunks, then each cell alone (its chunk padded with itself), then the command: one trace."""
    config = dataclasses.replace(CONFIG, method=method, temperatures=(1e-3, 1.0), num_steps=300, burnin=150)
    traces = count_step_traces(monkeypatch, method)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grid = sweep.run_sweep(config, tmp_path / "grid", progress=False, cells_per_chunk=2)
        alone = [sweep.run_sweep(dataclasses.replace(config, temperatures=(t,), seeds=(s,)), tmp_path / "alone",
                                 progress=False, cells_per_chunk=2)[0] for t, s in config.cells()]
    assert len(traces) == 1
    assert not [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    np.testing.assert_array_equal(table(alone), table(grid))
    by_name = dict(zip(VALUES, table(grid).T))
    assert np.all(np.isfinite(table(grid)[:, : len(sweep.METRICS)]))
    assert all(r["accuracy"] > 0.8 for r in grid if r["temperature"] == 1e-3)  # cold: near the fitted mode
    for name in ("grad_noise_ratio", "configurational_temperature", "kinetic_temperature"):
        assert np.all(np.isnan(by_name[name])), name  # SG-MCMC diagnostics do not apply
    assert np.all(by_name["diverged_chains"] == 0)
    # The command takes the method by name (cli.py lists no sweep methods) and reuses the compiled grid.
    out = tmp_path / "cli"
    args = [*CLI_ARGS, "--method", method, "--temperatures", "1e-3,1", "--steps", "300", "--burnin", "150"]
    assert cli.main([*args, "--chunk", "2", "--out", str(out)]) == 0
    np.testing.assert_array_equal(table(json.loads((out / "results.json").read_text())["cells"]), table(grid))
    assert len(traces) == 1


@pytest.mark.parametrize("tempering", ["posterior", "likelihood"])
def test_laplace_cells_give_the_exact_tempered_posterior_of_linear_regression(tempering):
    """Traced T through the sweep's Laplace step: diag, KFAC and last-layer KFAC are exact for one dense layer on
    orthogonal inputs, under either tempering (P = (K + Delta) / T or K / T + Delta)."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(40, 3))
    q, _ = np.linalg.qr(a - a.mean(0))
    x = q * np.array([3.0, 2.0, 1.0])  # centered, orthogonal columns: [1, X]^T [1, X] is diagonal
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.3 * rng.normal(size=40)
    design = np.concatenate([np.ones((40, 1)), x], axis=1)
    model = bj.models.mlp([], num_outputs=1)
    temperatures = np.array([1e-3, 0.1, 1.0])
    with jax.enable_x64(True):
        exact = [bj.linear.posterior(design, y, 0.3, 1.0, temperature=t, tempering=tempering) for t in temperatures]
        means = jnp.asarray(np.stack([m for m, _ in exact]))

        def variances(hessian, subset, temperature, mean):
            lj = bj.log_joint(model.apply, bj.priors.gaussian(1.0), bj.likelihoods.gaussian(0.3), 40,
                              temperature=temperature, tempering=tempering)
            params = {"Dense_0": {"bias": mean[None, :1], "kernel": mean[None, 1:, None]}}  # one fit
            algorithm, states = sweep.methods.laplace_at_map(hessian, subset, lj, None, MAPState(params, None),
                                                             jnp.asarray(x), jnp.asarray(y)[:, None])
            post = from_state(bj.base.log_joint_of(algorithm), jax.tree.map(lambda s: s[0], states), subset=subset)
            variance = marginal_variance(post)["Dense_0"]
            return jnp.concatenate([variance["bias"], variance["kernel"][:, 0]])

        for hessian, subset in (("diag", "all"), ("kfac", "all"), ("kfac", "last_layer")):
            got = jax.jit(jax.vmap(lambda t, m: variances(hessian, subset, t, m)))(jnp.asarray(temperatures), means)
            np.testing.assert_allclose(got, np.stack([np.diag(c) for _, c in exact]), rtol=1e-6)


def test_every_method_is_a_choice_and_bad_laplace_predictives_are_refused():
    assert {"sgld", "sghmc", "cyclical_sgld", "meanfield_vi", "laplace_diag", "laplace_kfac",
            "laplace_last_layer"} <= set(sweep.METHODS)
    for method in sweep.METHODS:
        dataclasses.replace(CONFIG, method=method).validate()
    with pytest.raises(ValueError, match="laplace_predictive"):
        dataclasses.replace(CONFIG, method="laplace_diag", laplace_predictive="exact").validate()


def test_resume_skips_finished_cells_and_recomputes_damaged_ones(reference, tmp_path):
    with pytest.warns(UserWarning):
        sweep.run_sweep(CONFIG, tmp_path, progress=False, cells_per_chunk=2)
    files = sorted((tmp_path / "cells").glob("*.json"))
    assert len(files) == 6
    stamps = {f: f.stat().st_mtime_ns for f in files}
    files[0].write_text(files[0].read_text()[:40])  # partial write
    tampered = json.loads(files[3].read_text())
    tampered["accuracy"] = 0.0  # a value changed without its checksum
    files[3].write_text(json.dumps(tampered))
    time.sleep(0.01)
    with pytest.warns(UserWarning):
        again = sweep.run_sweep(CONFIG, tmp_path, progress=False, cells_per_chunk=2)
    np.testing.assert_array_equal(table(again), table(reference))
    rewritten = {f for f in files if f.stat().st_mtime_ns != stamps[f]}
    chunk_mates = {files[0], files[3]}
    assert chunk_mates <= rewritten and len(rewritten) <= 4  # only the two damaged cells' chunks ran again


def test_a_changed_configuration_never_reuses_cells(tmp_path):
    small = dataclasses.replace(CONFIG, temperatures=(1.0,), seeds=(0,))
    with pytest.warns(UserWarning):
        sweep.run_sweep(small, tmp_path, progress=False)
        sweep.run_sweep(dataclasses.replace(small, step_size=2e-4), tmp_path, progress=False)
    assert len(list((tmp_path / "cells").glob("*.json"))) == 2


def test_sigkill_and_rerun_equals_an_uninterrupted_sweep(tmp_path):
    # Long enough chunks (3000 steps) that the kill lands between the first and the last chunk,
    # even when the subprocess finds its program in the persistent compilation cache.
    config = dataclasses.replace(CONFIG, num_steps=3000, burnin=1500, thin=300)
    args = [*CLI_ARGS, "--steps", "3000", "--burnin", "1500", "--thin", "300", "--chunk", "2"]
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-m", "bayesjax.cli", *args, "--out", str(out)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not list((out / "cells").glob("*.json")) and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = len(list((out / "cells").glob("*.json")))
    assert 0 < finished < 6, f"the kill came too late to test resuming ({finished} cells done)"
    with pytest.warns(UserWarning):
        resumed = sweep.run_sweep(config, out, progress=False, cells_per_chunk=2)
        uninterrupted = sweep.run_sweep(config, tmp_path / "whole", progress=False, cells_per_chunk=2)
    np.testing.assert_array_equal(table(resumed), table(uninterrupted))


@pytest.mark.parametrize("args,message", [
    (["--dataset", "nonsense"], "unknown"),
    (["--temperatures", "0.1,0"], "temperature"),
    (["--temperatures", ""], "empty"),
    (["--seeds", ""], "empty"),
    (["--method", "magic"], "method"),
    (["--method", "laplace_kfac", "--model", "cnn"], "supports"),
])
def test_bad_arguments_fail_clearly_without_writing(tmp_path, capsys, args, message):
    out = tmp_path / "results"
    assert cli.main([*CLI_ARGS, "--out", str(out), *args]) == 2
    assert message in capsys.readouterr().err.lower()
    assert not out.exists()


def test_cli_writes_tables_and_figure(tmp_path, capsys):
    assert cli.main([*CLI_ARGS, "--temperatures", "0.1,1", "--seeds", "0", "--out", str(tmp_path)]) == 0
    assert "augmentation off" in capsys.readouterr().out
    payload = json.loads((tmp_path / "results.json").read_text())
    assert len(payload["cells"]) == 2 and payload["config"]["method"] == "sgld"
    assert (tmp_path / "results.csv").read_text().count("\n") == 3
    assert (tmp_path / "sweep.png").stat().st_size > 1000


def test_configurational_temperature_of_exact_samples():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    y = x @ rng.normal(size=4) + 0.3 * rng.normal(size=50)
    with jax.enable_x64(True):
        for temperature in (1.0, 0.05):
            mean, cov = bj.linear.posterior(x, y, 0.3, 1.0, temperature=temperature)
            draws = jnp.asarray(rng.multivariate_normal(np.asarray(mean), np.asarray(cov), size=4000))
            lj = bj.log_joint(lambda p, x: x @ p[:, None], bj.priors.gaussian(1.0), bj.likelihoods.gaussian(0.3),
                              50, temperature=temperature)
            grad_potential = jax.grad(lambda p: -temperature * lj(p, (x, y)))
            estimate = float(sweep.configurational_temperature(grad_potential, draws))
            per_draw = np.asarray(jax.vmap(lambda p: p @ grad_potential(p))(draws)) / 4
            assert abs(estimate - temperature) < 3 * per_draw.std() / np.sqrt(len(per_draw))


def test_gradient_noise_ratio_of_known_noise():
    grads = {"w": jnp.asarray(np.random.default_rng(1).normal(0.0, 3.0, size=(20000, 5)))}
    ratio = float(sweep.gradient_noise_ratio(grads, step_size=1e-3, temperature=0.5))
    np.testing.assert_allclose(ratio, 1e-3 * 9.0 / (2 * 0.5), rtol=0.03)


def test_a_chain_sweep_that_would_keep_no_position_is_refused():
    with pytest.raises(ValueError, match="no position would be kept"):
        dataclasses.replace(CONFIG, num_steps=40, burnin=20, thin=50).validate()
    dataclasses.replace(CONFIG, method="meanfield_vi", num_steps=40, burnin=20, thin=50).validate()  # no chains

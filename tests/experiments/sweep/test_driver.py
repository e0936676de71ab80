"""``run_sweep``: one compile, cell-by-cell equality, kill-and-resume."""
import csv
import dataclasses
import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import time
import warnings

import jax
import numpy as np
import pytest

import bayesjax as bj
from bayesjax import cli
from bayesjax.experiments import sweep
from bayesjax.experiments.sweep.store import cell_path
from tests.experiments.sweep.tiny_grid import CLI_ARGS, CONFIG, VALUES, count_step_traces, table

ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The grid in one uninterrupted sweep, two cells per compiled call."""
    out = tmp_path_factory.mktemp("reference")
    with pytest.warns(UserWarning, match="nominal temperature"):
        return sweep.run_sweep(CONFIG, out, progress=False, cells_per_chunk=2)


def test_the_grid_compiles_the_step_once(tmp_path, monkeypatch):
    traces = count_step_traces(monkeypatch, "sgld")
    config = dataclasses.replace(CONFIG, step_size=0.13)  # not compiled by another test yet
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


@pytest.mark.parametrize("method", ["meanfield_vi", "laplace_diag", "mc_dropout"])
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
    cells = json.loads((out / "results.json").read_text())["results"]
    np.testing.assert_array_equal(table([{k: np.nan if v is None else v for k, v in c.items()} for c in cells]),
                                  table(grid))
    assert len(traces) == 1


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


def test_a_resumed_sweep_keeps_the_chunking_of_its_finished_cells(reference, tmp_path):
    """Cells record their chunk size: a rerun without --chunk takes it, another one is refused."""
    with pytest.warns(UserWarning):
        first = sweep.run_sweep(CONFIG, tmp_path, progress=False, cells_per_chunk=2)
    files = sorted((tmp_path / "cells").glob("*.json"))
    assert {json.loads(f.read_text())["cells_per_chunk"] for f in files} == {2}
    stamps = {f: f.stat().st_mtime_ns for f in files}
    with pytest.raises(ValueError, match=r"computed \[2\] per compiled call, not 3: resume with --chunk 2"):
        sweep.run_sweep(CONFIG, tmp_path, progress=False, cells_per_chunk=3)
    assert sweep.chunk_size(len(CONFIG.cells()), len(jax.devices())) != 2
    lost = cell_path(tmp_path, CONFIG, 1e-3, 0)  # an interrupted sweep: the default takes the stored chunking
    lost.unlink()
    time.sleep(0.01)
    with pytest.warns(UserWarning):
        again = sweep.run_sweep(CONFIG, tmp_path, progress=False)
    np.testing.assert_array_equal(table(again), table(first))
    rewritten = {f for f in files if f.stat().st_mtime_ns != stamps[f]}
    assert rewritten == {lost, cell_path(tmp_path, CONFIG, 0.1, 0)}  # the lost cell's chunk of 2, grid order
    with pytest.raises(ValueError, match="cells_per_chunk must be an integer >= 1, got 0"):
        sweep.run_sweep(CONFIG, tmp_path / "new", progress=False, cells_per_chunk=0)


@pytest.mark.parametrize("cells, devices", [(51, 2), (34, 2), (17, 1), (102, 4), (6, 4), (1, 1), (9, 2)])
def test_chunks_pad_least_within_4_cells_per_device(cells, devices):
    size = sweep.chunk_size(cells, devices)
    assert size % devices == 0
    if cells <= 4 * devices:
        assert size == math.ceil(cells / devices) * devices  # the whole grid in one call
        return
    padding = {k: math.ceil(cells / (k * devices)) * k * devices - cells for k in (2, 3, 4)}
    assert size // devices in padding and padding[size // devices] == min(padding.values())


def test_a_changed_configuration_never_reuses_cells(tmp_path):
    small = dataclasses.replace(CONFIG, temperatures=(1.0,), seeds=(0,))
    with pytest.warns(UserWarning):
        sweep.run_sweep(small, tmp_path, progress=False)
        sweep.run_sweep(dataclasses.replace(small, step_size=0.2), tmp_path, progress=False)
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


def test_a_diverging_sweep_stops_after_the_chunk_and_writes_nan(tmp_path):
    config = dataclasses.replace(CONFIG, temperatures=(1e-3, 1.0), seeds=(0,), step_size=1e4)
    with pytest.raises(bj.DivergenceError, match=r"T=0.001 seed 0: 2 chain\(s\) from step \d+.*Try --step-size 2.5e\+03"):
        sweep.run_sweep(config, tmp_path, progress=False, cells_per_chunk=1)
    written = [json.loads(f.read_text()) for f in (tmp_path / "cells").glob("*.json")]
    assert len(written) == 1  # the second chunk never ran
    assert all(written[0][name] is None for name in sweep.METRICS)  # NaN, in strict JSON
    assert written[0]["diverged_chains"] == 2 and written[0]["diverged_at"] >= 1


def test_a_diverged_cell_is_nan_in_the_table_and_in_both_files(tmp_path, capsys):
    """The command's table and files agree on a diverged cell: NaN metrics (JSON null), never a prediction."""
    config = dataclasses.replace(CONFIG, temperatures=(1e-3,), seeds=(0,), step_size=1e4)
    with pytest.raises(bj.DivergenceError):
        sweep.run_sweep(config, tmp_path, progress=False, cells_per_chunk=1)
    args = [*CLI_ARGS, "--temperatures", "1e-3", "--seeds", "0", "--step-size", "1e4", "--out", str(tmp_path)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cli.main(args) == 0  # the finished (diverged) cell is read back, nothing runs
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1 and "1 cell(s) had diverged chains or fits" in messages[0]  # not "T not met"
    header, row = capsys.readouterr().out.splitlines()[:2]
    shown = dict(zip(header.split(), row.replace("augmentation off", "off").split()))
    assert all(shown[name] == "nan" for name in sweep.METRICS) and shown["diverged_chains"] == "2"
    cell = json.loads((tmp_path / "results.json").read_text())["results"][0]
    assert all(cell[name] is None for name in sweep.METRICS) and cell["diverged_chains"] == 2
    with open(tmp_path / "results.csv", newline="") as f:
        line = next(csv.DictReader(f))
    assert all(line[name] == "nan" for name in sweep.METRICS) and float(line["diverged_chains"]) == 2

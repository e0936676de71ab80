"""``run_compare``: every method on a tiny run, the HMC reference, the files written, the 1-D bands path,
the calibration columns and the Laplace prior's tuning."""
import csv
import json
import math

import jax
import numpy as np
import pytest

from bayesjax import cli
from bayesjax.experiments import compare, outputs
from bayesjax.inference.laplace.gridsearch import DEFAULT_GRID

TINY = ["--steps", "12", "--members", "1", "--samples", "4", "--hidden", "8", "--quiet"]


@pytest.fixture(scope="module")
def every_method(tmp_path_factory):
    """One tiny classification run of every method (digits, 8 hidden units, 12 steps, 1 member or chain)."""
    out = tmp_path_factory.mktemp("compare")
    code = cli.main(["compare", "--dataset", "digits", *TINY, "--out", str(out)])
    return code, out, json.loads((out / "results.json").read_text())


def test_every_method_gives_finite_columns(every_method):
    code, _, results = every_method
    assert code == 0
    rows = results["results"]
    assert [row["method"] for row in rows] == list(compare.METHODS)
    columns = ["train_seconds", "predict_seconds", "compile_seconds", "accuracy", "nll", "ece", "brier",
               "ood_auroc", "ts_temperature", "ts_ece", "conformal_size", "conformal_coverage", "agreement",
               "total_variation"]
    for row in rows:
        assert list(row) == ["method", *columns[:-2], "prior_precision", *columns[-2:]]
        assert all(isinstance(row[c], float) and math.isfinite(row[c]) for c in columns), row
        assert row["train_seconds"] >= 0 and row["predict_seconds"] >= 0 and row["compile_seconds"] > 0
        assert 0 <= row["agreement"] <= 1 and 0 <= row["total_variation"] <= 1
        assert row["ts_temperature"] > 0 and 0 <= row["ts_ece"] <= 1 and 0 <= row["conformal_coverage"] <= 1
        assert 0 <= row["conformal_size"] <= 10
        # By default the Laplace methods tune their prior on the validation split; the others have none.
        # (a grid value in the float32 of the posterior's arrays).
        assert (np.float32(row["prior_precision"]) in np.float32(DEFAULT_GRID)) if row["method"].startswith(
            "laplace") else (row["prior_precision"] is None)
    assert results["reference"] == "hmc" and results["config"]["ood"] == "rot90"
    assert results["budgets"]["sgld"] == {"steps": 12, "members": 1, "samples": 4}


def test_hmc_reference_agrees_with_itself(every_method):
    hmc = next(row for row in every_method[2]["results"] if row["method"] == "hmc")
    assert hmc["agreement"] == 1.0 and hmc["total_variation"] == 0.0


def test_writes_strict_json_and_csv_with_their_provenance_and_a_reliability_diagram_per_method(every_method):
    _, out, results = every_method
    json.loads((out / "results.json").read_text(), parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert results["config_hash"] == outputs.config_hash(results["config"]) and results["config"]["hidden"] == [8]
    assert results["jax_version"] == jax.__version__ and results["bayesjax_version"]
    with open(out / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["method"] for r in table] == [r["method"] for r in results["results"]]
    assert float(table[0]["nll"]) == pytest.approx(results["results"][0]["nll"])
    assert {(r["config_hash"], r["jax_version"]) for r in table} == {(results["config_hash"], jax.__version__)}
    assert (out / "reliability.png").stat().st_size > 1000
    for name in compare.METHODS:
        assert (out / f"reliability_{name}.png").stat().st_size > 1000
    assert not (out / "bands.png").exists()


def test_1d_regression_draws_the_bands(tmp_path, capsys):
    code = cli.main(["compare", "--dataset", "gap", "--methods", "map,hmc", *TINY, "--out", str(tmp_path)])
    assert code == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header == ["method", "train_seconds", "predict_seconds", "compile_seconds", "rmse", "nll", "gaussian_nll",
                      "conformal_width", "conformal_coverage", "prior_precision"]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["budgets"]["hmc"] == {"steps": 12, "members": 1, "samples": 4}
    assert all(math.isfinite(v) for row in results["results"] for k, v in row.items()
               if k not in ("method", "prior_precision"))
    assert all(row["conformal_width"] > 0 for row in results["results"])
    assert (tmp_path / "bands.png").stat().st_size > 1000
    assert not list(tmp_path.glob("reliability*.png"))


@pytest.mark.parametrize("laplace_prior", ["untuned", "evidence"])
def test_the_untuned_and_evidence_rows_stay_and_no_split_turns_calibration_off(tmp_path, laplace_prior):
    config = compare.CompareConfig(dataset="iris", methods=("map", "laplace_diag"), hidden=(8,), steps=50, samples=4,
                                   prior_scale=0.5, validation_fraction=0, laplace_prior=laplace_prior)
    rows = compare.run_compare(config, tmp_path, progress=False)
    assert not any(name.startswith(("ts_", "conformal_")) for name in rows[0])
    precision = rows[1]["prior_precision"]
    if laplace_prior == "untuned":
        assert precision == 1 / 0.5**2
    else:  # the evidence's maximum moved away from the prior's 4 (a 50-step MAP of 8 hidden units)
        assert precision > 0 and abs(math.log(precision / 4.0)) > 0.1
    assert json.loads((tmp_path / "results.json").read_text())["config"]["laplace_prior"] == laplace_prior

import json

import pytest

from bayesjax import cli


def test_compare_writes_table_json_and_figure(tmp_path, capsys):
    code = cli.main(["compare", "--dataset", "digits", "--methods", "map", "--steps", "200",
                     "--out", str(tmp_path), "--quiet"])
    assert code == 0
    table = capsys.readouterr().out
    header = table.splitlines()[0].split()
    assert header == ["method", "train_seconds", "predict_seconds", "accuracy", "nll", "ece", "brier"]
    results = json.loads((tmp_path / "results.json").read_text())
    row = results["results"][0]
    assert row["method"] == "map" and 0.8 < row["accuracy"] <= 1.0
    assert results["config"]["steps"] == 200
    assert (tmp_path / "reliability.png").stat().st_size > 1000


def test_compare_runs_every_method(tmp_path, capsys):
    methods = sorted(cli.METHODS)
    assert cli.main(["compare", "--methods", ",".join(methods), "--steps", "100", "--hidden", "16",
                     "--out", str(tmp_path), "--quiet"]) == 0
    rows = json.loads((tmp_path / "results.json").read_text())["results"]
    assert [r["method"] for r in rows] == methods
    assert all(0.1 < r["accuracy"] <= 1.0 for r in rows)


def test_compare_regression_dataset(tmp_path, capsys):
    assert cli.main(["compare", "--dataset", "diabetes", "--steps", "50", "--out", str(tmp_path), "--quiet"]) == 0
    assert "rmse" in capsys.readouterr().out.splitlines()[0]
    assert not (tmp_path / "reliability.png").exists()


def test_unknown_method_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="unknown method"):
        cli.main(["compare", "--methods", "sgld_typo", "--out", str(tmp_path)])


def test_bad_input_is_an_error_message(tmp_path, capsys):
    assert cli.main(["compare", "--temperature", "0", "--out", str(tmp_path), "--quiet"]) == 2
    assert "temperature" in capsys.readouterr().err

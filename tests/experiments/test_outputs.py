"""Strict outputs: JSON without NaN, CSV of plain values, provenance and configuration hash in both."""
import csv
import dataclasses
import json
import math
import subprocess

import jax
import numpy as np
import pytest

from bayesjax.experiments import outputs
from bayesjax.experiments.sweep import SweepConfig


def refuse(constant):
    raise AssertionError(f"not strict JSON: {constant}")


def test_plain_values_make_strict_json():
    value = {"nll": float("nan"), "inf": -math.inf, "widths": (50, 50), "n": np.int32(3), "x": np.float32(0.5),
             "a": jax.numpy.arange(2), 1: None}
    text = json.dumps(outputs.plain(value), allow_nan=False)
    assert json.loads(text, parse_constant=refuse) == {"nll": None, "inf": None, "widths": [50, 50], "n": 3,
                                                       "x": 0.5, "a": [0, 1], "1": None}


def test_the_configuration_hash_follows_every_setting():
    config = SweepConfig(temperatures=(0.1, 1.0))
    assert outputs.config_hash(config) == outputs.config_hash(SweepConfig(temperatures=(0.1, 1.0)))
    assert len(outputs.config_hash(config)) == 16
    for change in ({"temperatures": (0.1,)}, {"step_size": 0.2}, {"augment": True}):
        assert outputs.config_hash(dataclasses.replace(config, **change)) != outputs.config_hash(config)
    assert outputs.config_hash({"on": config}) != outputs.config_hash({"off": config})


def test_results_are_strict_json_and_plain_csv_with_their_provenance(tmp_path):
    rows = [{"setting": "augmentation off", "temperature": 1e-3, "accuracy": float("nan"), "agreement": None,
             "seed": np.uint32(1)},
            {"setting": "augmentation on", "temperature": 1.0, "accuracy": 0.875, "agreement": 0.5, "seed": 2}]
    config = {"augmentation off": SweepConfig(), "augmentation on": SweepConfig(augment=True)}
    outputs.write_results(tmp_path, config, rows, skipped={"hmc": "too large"})
    payload = json.loads((tmp_path / "results.json").read_text(), parse_constant=refuse)
    assert payload["results"][0] == {"setting": "augmentation off", "temperature": 1e-3, "accuracy": None,
                                     "agreement": None, "seed": 1}
    assert payload["skipped"] == {"hmc": "too large"}
    assert payload["config"]["augmentation on"]["augment"] is True
    assert payload["config_hash"] == outputs.config_hash(config)
    assert payload["bayesjax_version"] and payload["jax_version"] == jax.__version__
    assert payload["devices"] == f"{jax.device_count()} {jax.default_backend()}"
    with open(tmp_path / "results.csv", newline="") as f:
        header, *lines = list(csv.reader(f))
    assert header == ["setting", "temperature", "accuracy", "agreement", "seed", "bayesjax_version", "jax_version",
                      "git_commit", "git_dirty", "devices", "config_hash"]
    assert lines[0][:5] == ["augmentation off", "0.001", "nan", "", "1"]  # NaN as nan, None empty, no repr quotes
    assert lines[1][:5] == ["augmentation on", "1.0", "0.875", "0.5", "2"]
    assert all(line[-1] == payload["config_hash"] and line[6] == jax.__version__ for line in lines)
    assert not list(tmp_path.glob(".*.tmp"))  # written through temporary files renamed into place


def test_the_commit_is_none_outside_a_git_checkout(tmp_path):
    assert outputs.git_commit(tmp_path) == (None, None)
    inner = tmp_path / "project"
    (inner / "sub").mkdir(parents=True)
    try:
        subprocess.run(["git", "init", "-q", str(inner)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no git")
    assert outputs.git_commit(inner) == (None, None)  # a repository without a commit
    assert outputs.git_commit(inner / "sub") == (None, None)  # a folder inside another checkout is not one


def test_the_commit_of_this_checkout():
    if not (outputs.REPOSITORY / ".git").exists():
        pytest.skip("not run from a git checkout")
    commit, dirty = outputs.git_commit()
    expected = subprocess.run(["git", "-C", str(outputs.REPOSITORY), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    assert commit == expected and isinstance(dirty, bool)

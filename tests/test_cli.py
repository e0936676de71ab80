"""The ``bayesjax`` command line: compare's help and refusals, sweep's refusals and files (the runs are in
tests/experiments/compare/test_driver.py and tests/experiments/sweep/test_driver.py)."""
import json
import os
import subprocess
import sys

import pytest

from bayesjax import cli
from bayesjax.experiments import compare
from tests.experiments.sweep.tiny_grid import CLI_ARGS


def test_help_lists_every_method_with_its_budget(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["compare", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for name, method in compare.METHODS.items():
        line = next(line for line in text.splitlines() if line.startswith(name + " "))
        assert line.split()[1:4] == [str(method.budget.steps or "MAP"), str(method.budget.members),
                                     str(method.budget.samples)]
    assert "exclude JAX compilation" in text and "--hmc-max-params" in text


@pytest.mark.parametrize("args, message", [
    (["--methods", "map,sgld_typo"], "unknown method"),
    (["--methods", "map,map"], "without repeats"),
    (["--dataset", "digitz"], "unknown dataset"),
    (["--temperature", "0"], "temperature"),
    (["--steps", "0"], "steps"),
    (["--steps", "1"], "steps must be an integer >= 2"),
    (["--samples", "-3"], "samples"),
    (["--hidden", "8,x"], "invalid literal"),
    (["--ood", "blur"], "ood must be one of"),
    (["--dataset", "iris", "--ood", "rot90"], "needs images"),
    (["--dataset", "gap", "--ood", "noise"], "regression"),
    (["--methods", "hmc", "--hmc-max-params", "100"], "HMC limit"),
])
def test_bad_arguments_exit_nonzero_without_writing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert cli.main(["compare", *args, "--out", str(out), "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_argparse_refusals_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["compare", "--model", "rnn", "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_importing_the_command_leaves_the_host_split_to_it():
    # `bayesjax` splits the CPU into devices before JAX starts; importing the package must not start JAX.
    code = ("import bayesjax.cli; from jax._src import xla_bridge; "
            "assert not xla_bridge.backends_are_initialized(), 'import started the JAX backend'")
    subprocess.run([sys.executable, "-c", code], check=True, env={k: v for k, v in os.environ.items()
                                                                  if k != "XLA_FLAGS"})


@pytest.mark.parametrize("args,message", [
    (["--dataset", "nonsense"], "unknown"),
    (["--temperatures", "0.1,0"], "temperature"),
    (["--temperatures", ""], "empty"),
    (["--seeds", ""], "empty"),
    (["--method", "magic"], "method"),
    (["--method", "laplace_kfac", "--model", "cnn"], "supports"),
])
def test_bad_sweep_arguments_fail_clearly_without_writing(tmp_path, capsys, args, message):
    out = tmp_path / "results"
    assert cli.main([*CLI_ARGS, "--out", str(out), *args]) == 2
    assert message in capsys.readouterr().err.lower()
    assert not out.exists()


def test_sweep_writes_tables_and_figure(tmp_path, capsys):
    assert cli.main([*CLI_ARGS, "--temperatures", "0.1,1", "--seeds", "0", "--out", str(tmp_path)]) == 0
    assert "augmentation off" in capsys.readouterr().out
    payload = json.loads((tmp_path / "results.json").read_text())
    assert len(payload["cells"]) == 2 and payload["config"]["method"] == "sgld"
    assert (tmp_path / "results.csv").read_text().count("\n") == 3
    assert (tmp_path / "sweep.png").stat().st_size > 1000


def test_a_preset_fills_the_protocol_and_given_flags_override_it():
    argv = ["sweep", "--preset", "fmnist-cnn", "--seeds", "0", "--steps", "100"]
    args = cli._parser(cli._preset_defaults(argv)).parse_args(argv)
    assert (args.dataset, args.model, args.method, args.prior, args.augment) == (
        "fashion_mnist", "cnn", "cyclical_sghmc", "gaussian", "both")
    assert len(args.temperatures) == 17 and args.epochs_per_cycle == 3 and args.layerwise_preconditioner
    assert args.seeds == (0,) and args.steps == 100  # given flags win
    plain = cli._parser(cli._preset_defaults(["sweep"])).parse_args(["sweep"])
    assert (plain.dataset, plain.method, plain.prior) == ("digits", "sgld", "isotropic")

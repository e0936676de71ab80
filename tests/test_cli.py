"""The ``bayesjax`` command line: bad values refused by argparse (one table), help with defaults and groups,
refusals of settings that do not fit the data, the sweep's strict files (the runs are in
tests/experiments/compare/test_driver.py and tests/experiments/sweep/test_driver.py)."""
import csv
import json
import os
import subprocess
import sys

import jax
import pytest

import bayesjax as bj
from bayesjax import cli
from bayesjax.experiments import compare, outputs, sweep
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


# One line per bad value: (argv, what stderr must say). argparse refuses each before anything runs (exit 2).
BAD_VALUES = [
    (["sweep", "--seeds", "-1"], "argument --seeds: must be an integer in [0, 4294967296), got -1"),
    (["sweep", "--seeds", "4294967296"], "argument --seeds: must be an integer in [0, 4294967296)"),
    (["sweep", "--seeds", "0,0"], "argument --seeds: repeated entries"),
    (["sweep", "--seeds", "0,,1"], "argument --seeds: empty entry in '0,,1'"),
    (["sweep", "--seeds", ""], "argument --seeds: empty list"),
    (["sweep", "--seeds", "1.5"], "argument --seeds: expected an integer, got '1.5'"),
    (["sweep", "--chunk", "-1"], "argument --chunk: must be an integer >= 1, got -1"),
    (["sweep", "--chunk", "0"], "argument --chunk: must be an integer >= 1, got 0"),
    (["sweep", "--temperatures", "1,,2"], "argument --temperatures: empty entry in '1,,2'"),
    (["sweep", "--temperatures", "0.1,0"], "argument --temperatures: must be finite and > 0, got 0"),
    (["sweep", "--temperatures", "nan"], "argument --temperatures: must be finite and > 0, got nan"),
    (["sweep", "--temperatures", "0.1,0.1"], "argument --temperatures: repeated entries"),
    (["sweep", "--temperatures", ""], "argument --temperatures: empty list"),
    (["sweep", "--temperatures", "cold"], "argument --temperatures: expected a number, got 'cold'"),
    (["sweep", "--hidden", "abc"], "argument --hidden: expected an integer, got 'abc'"),
    (["sweep", "--hidden", "8,0"], "argument --hidden: must be an integer >= 1, got 0"),
    (["sweep", "--steps", "0"], "argument --steps: must be an integer >= 1"),
    (["sweep", "--batch-size", "0"], "argument --batch-size: must be an integer >= 1"),
    (["sweep", "--step-size", "-0.1"], "argument --step-size: must be finite and > 0"),
    (["sweep", "--step-size", "inf"], "argument --step-size: must be finite and > 0"),
    (["sweep", "--friction", "0"], "argument --friction: must be finite and > 0"),
    (["sweep", "--num-cycles", "0"], "argument --num-cycles: must be an integer >= 1"),
    (["sweep", "--epochs-per-cycle", "0"], "argument --epochs-per-cycle: must be an integer >= 1"),
    (["sweep", "--chains", "0"], "argument --chains: must be an integer >= 1"),
    (["sweep", "--burnin", "-1"], "argument --burnin: must be an integer >= 0"),
    (["sweep", "--thin", "0"], "argument --thin: must be an integer >= 1"),
    (["sweep", "--samples", "0"], "argument --samples: must be an integer >= 1"),
    (["sweep", "--prior-scale", "0"], "argument --prior-scale: must be finite and > 0"),
    (["sweep", "--learning-rate", "x"], "argument --learning-rate: expected a number"),
    (["sweep", "--split", "-1"], "argument --split: must be an integer >= 0"),
    (["sweep", "--method", "magic"], "argument --method: invalid choice"),
    (["sweep", "--prior", "horseshoe"], "argument --prior: invalid choice"),
    (["sweep", "--likelihood", "poisson"], "argument --likelihood: invalid choice"),
    (["sweep", "--tempering", "prior"], "argument --tempering: invalid choice"),
    (["sweep", "--ood", "blur"], "argument --ood: invalid choice"),
    (["sweep", "--laplace-predictive", "exact"], "argument --laplace-predictive: invalid choice"),
    (["sweep", "--laplace-prior", "marglik"], "argument --laplace-prior: invalid choice"),
    (["sweep", "--validation-fraction", "1"], "argument --validation-fraction: must be in [0, 1)"),
    (["sweep", "--preset", "mnist"], "argument --preset: invalid choice"),
    (["compare", "--seed", "-1"], "argument --seed: must be an integer in [0, 4294967296)"),
    (["compare", "--seed", "4294967296"], "argument --seed: must be an integer in [0, 4294967296)"),
    (["compare", "--hidden", "8,x"], "argument --hidden: expected an integer, got 'x'"),
    (["compare", "--hidden", "8,,8"], "argument --hidden: empty entry"),
    (["compare", "--methods", "map,sgld_typo"], "argument --methods: unknown method 'sgld_typo'"),
    (["compare", "--methods", "map,map"], "argument --methods: repeated entries"),
    (["compare", "--methods", "map,,sgld"], "argument --methods: empty entry"),
    (["compare", "--temperature", "0"], "argument --temperature: must be finite and > 0"),
    (["compare", "--noise-std", "-1"], "argument --noise-std: must be finite and > 0"),
    (["compare", "--prior-scale", "nan"], "argument --prior-scale: must be finite and > 0"),
    (["compare", "--learning-rate", "0"], "argument --learning-rate: must be finite and > 0"),
    (["compare", "--step-size", "0"], "argument --step-size: must be finite and > 0"),
    (["compare", "--steps", "1"], "argument --steps: must be an integer >= 2, got 1"),
    (["compare", "--members", "0"], "argument --members: must be an integer >= 1"),
    (["compare", "--samples", "-3"], "argument --samples: must be an integer >= 1"),
    (["compare", "--batch-size", "0"], "argument --batch-size: must be an integer >= 1"),
    (["compare", "--hmc-max-params", "0"], "argument --hmc-max-params: must be an integer >= 1"),
    (["compare", "--split", "-1"], "argument --split: must be an integer >= 0"),
    (["compare", "--ood", "blur"], "argument --ood: invalid choice"),
    (["compare", "--model", "rnn"], "argument --model: invalid choice"),
    (["compare", "--laplace-predictive", "exact"], "argument --laplace-predictive: invalid choice"),
    (["compare", "--laplace-prior", "marglik"], "argument --laplace-prior: invalid choice"),
    (["compare", "--validation-fraction", "1"], "argument --validation-fraction: must be in [0, 1)"),
    (["compare", "--validation-fraction", "x"], "argument --validation-fraction: expected a number"),
]


@pytest.mark.parametrize("argv, message", BAD_VALUES, ids=[" ".join(argv) for argv, _ in BAD_VALUES])
def test_bad_values_are_refused_by_argparse_naming_the_flag(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, "--out", str(out)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and f"bayesjax {argv[0]}: error: " in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--dataset", "digitz"], "unknown dataset"),
    (["--dataset", "iris", "--ood", "rot90"], "needs images"),
    (["--dataset", "gap", "--ood", "noise"], "regression"),
    (["--methods", "hmc", "--hmc-max-params", "100"], "HMC limit"),
    (["--validation-fraction", "0", "--laplace-prior", "validation"], "needs a validation split"),
])
def test_arguments_wrong_for_the_data_exit_2_without_writing(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert cli.main(["compare", *args, "--out", str(out), "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_importing_the_command_and_building_its_parser_leave_the_host_split_to_it():
    # `bayesjax` splits the CPU into devices before JAX starts; importing the package and parsing the flags
    # (which imports the method tables for the choices) must not start JAX.
    code = ("import bayesjax.cli; from jax._src import xla_bridge; "
            "assert not xla_bridge.backends_are_initialized(), 'import started the JAX backend'; "
            "bayesjax.cli._parser().parse_args(['sweep']); "
            "assert not xla_bridge.backends_are_initialized(), 'the parser started the JAX backend'")
    subprocess.run([sys.executable, "-c", code], check=True, env={k: v for k, v in os.environ.items()
                                                                  if k != "XLA_FLAGS"})


@pytest.mark.parametrize("args,message", [
    (["--dataset", "nonsense"], "unknown"),
    (["--method", "laplace_kfac", "--model", "cnn"], "supports"),
    (["--method", "sgld", "--layerwise-preconditioner"], "layerwise preconditioner"),
    (["--steps", "40", "--burnin", "35"], "no position would be kept"),
    (["--method", "laplace_diag", "--laplace-prior", "validation", "--validation-fraction", "0"],
     "laplace_prior='validation' needs a validation split: validation_fraction > 0"),
    (["--laplace-prior", "evidence"], "applies to the laplace methods"),
])
def test_sweep_settings_that_do_not_fit_together_fail_clearly_without_writing(tmp_path, capsys, args, message):
    out = tmp_path / "results"
    assert cli.main([*CLI_ARGS, "--out", str(out), *args]) == 2
    assert message in capsys.readouterr().err.lower()
    assert not out.exists()


def help_entries(command: str, capsys) -> dict[str, dict[str, str]]:
    """``{group title: {flag: its help, whitespace normalized}}`` read from ``bayesjax COMMAND --help``."""
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    groups, flag = {}, None
    for line in capsys.readouterr().out.split("\n\n", 2)[2].splitlines():  # after the usage and description
        if line and not line[0].isspace():
            if not line.endswith(":"):
                break  # the epilog
            title, flag = line[:-1], None
            groups[title] = {}
        elif line.startswith("  -"):
            flag, _, text = line.strip().partition("  ")
            flag = flag.split()[0].rstrip(",")
            groups[title][flag] = text.strip()
        elif flag is not None and line.strip():
            groups[title][flag] = f"{groups[title][flag]} {line.strip()}".strip()
    return groups


@pytest.mark.parametrize("command", ["sweep", "compare"])
def test_help_gives_every_flag_a_sentence_and_its_default(command, capsys):
    groups = help_entries(command, capsys)
    flags = {flag: text for entries in groups.values() for flag, text in entries.items() if flag != "-h"}
    assert len(flags) >= 19
    for flag, text in flags.items():
        assert len(text) > 12 and "(default: " in text, (flag, text)
    assert "(default: 50,50)" in flags["--hidden"]
    if command == "sweep":
        assert "(default: wenzel)" in flags["--temperatures"] and "(default: 0,1)" in flags["--seeds"]
        assert "(default: half of --steps)" in flags["--burnin"] and "None" not in flags["--burnin"]


def test_sweep_help_groups_its_flags(capsys):
    groups = help_entries("sweep", capsys)
    assert list(groups) == ["options", "data", "model", "method", "grid", "output"]
    assert set(groups["options"]) == {"-h", "--preset"}
    assert {"--dataset", "--augment", "--ood"} <= set(groups["data"])
    assert {"--model", "--hidden", "--prior", "--tempering"} <= set(groups["model"])
    assert {"--method", "--step-size", "--chains", "--burnin", "--thin"} <= set(groups["method"])
    assert set(groups["grid"]) == {"--temperatures", "--seeds", "--chunk"}
    assert set(groups["output"]) == {"--out", "--quiet"}


def test_the_table_prints_nan_as_nan_and_none_as_a_dash():
    table = cli.format_table([{"setting": "augmentation off", "temperature": 1.778e-4, "accuracy": float("nan"),
                               "agreement": None, "diverged_chains": 2.0}])
    header, row = table.splitlines()
    assert header.split() == ["setting", "temperature", "accuracy", "agreement", "diverged_chains"]
    assert row.split()[2:] == ["0.0001778", "nan", "-", "2"]


def strict_json(text: str):
    def refuse(constant):
        raise AssertionError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_sweep_writes_strict_tables_with_their_provenance_and_the_figure(tmp_path, capsys):
    argv = [*CLI_ARGS, "--temperatures", "0.1,1", "--seeds", "0", "--chunk", "2", "--out", str(tmp_path)]
    with pytest.warns(UserWarning, match="nominal temperature"):
        assert cli.main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    payload = strict_json((tmp_path / "results.json").read_text())
    cells = payload["results"]
    assert len(cells) == 2 and payload["config"]["augmentation off"]["method"] == "sgld"
    assert payload["config_hash"] == outputs.config_hash(payload["config"])
    assert payload["bayesjax_version"] == bj.__version__ and payload["jax_version"] == jax.__version__
    assert payload["git_commit"] is None or len(payload["git_commit"]) == 40
    assert all(cell["kinetic_temperature"] is None for cell in cells)  # NaN for SGLD: JSON null
    with open(tmp_path / "results.csv", newline="") as f:
        header, *rows = list(csv.reader(f))
    assert len(rows) == 2 and rows[0][header.index("setting")] == "augmentation off"  # a plain value, no repr
    for key in ("bayesjax_version", "jax_version", "git_commit", "config_hash"):
        assert rows[0][header.index(key)] == (payload[key] or "")
    assert rows[0][header.index("kinetic_temperature")] == "nan"
    # The printed table and the files agree, cell by cell.
    columns = printed[0].split()
    assert columns[-1] == "diverged_chains"
    for line, row, cell in zip(printed[1:3], rows, cells):
        shown = dict(zip(columns, line.replace("augmentation off", "augmentation_off").split()))
        for name in ("accuracy", "nll", "grad_noise_ratio"):
            assert shown[name] == f"{float(row[header.index(name)]):.4g}" == f"{cell[name]:.4g}"
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


def _finished_sweep(out, accuracies: dict) -> None:
    """A sweep's results.json as `bayesjax sweep` writes it: (setting, T) -> accuracy per seed."""
    config = sweep.SweepConfig(temperatures=(0.1, 1.0), seeds=(0, 1))
    rows = [{"setting": setting, "temperature": t, "seed": seed, "accuracy": accuracy, "nll": 1 - accuracy}
            for (setting, t), per_seed in accuracies.items() for seed, accuracy in enumerate(per_seed)]
    sweep.write_results(rows, {setting: config for setting, _ in accuracies}, out)


def test_plot_overlays_finished_sweeps_and_prints_their_means_over_seeds(tmp_path, capsys):
    off, on = "augmentation off", "augmentation on"
    _finished_sweep(tmp_path / "gauss", {(off, 0.1): [0.8, 0.9], (off, 1.0): [0.7, 0.8], (on, 1.0): [0.5, 0.6]})
    _finished_sweep(tmp_path / "t", {(off, 0.1): [0.6, float("nan")], (off, 1.0): [0.9, 0.9]})
    figure = tmp_path / "priors.png"
    argv = ["plot", f"gaussian={tmp_path / 'gauss'}", str(tmp_path / "t"), "--setting", off, "--out", str(figure),
            "--metrics", "accuracy,nll"]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["curve", "temperature", "seeds", "accuracy", "nll"]
    rows = [line.replace(f", {off}", "").split() for line in lines[1:5]]
    assert rows == [["gaussian", "0.1", "2", "0.85", "0.15"], ["gaussian", "1", "2", "0.75", "0.25"],
                    ["t", "0.1", "2", "nan", "nan"],  # a diverged seed is not averaged away
                    ["t", "1", "2", "0.9", "0.1"]]
    assert figure.stat().st_size > 1000 and lines[-1] == f"wrote {figure}"
    assert cli.main(["plot", str(tmp_path / "missing"), "--out", str(figure)]) == 2
    assert "missing/results.json not found" in capsys.readouterr().err
    assert cli.main(["plot", str(tmp_path / "t"), "--setting", on, "--out", str(figure)]) == 2
    assert "has no setting 'augmentation on'" in capsys.readouterr().err

"""``bayesjax compare``: every inference method on one data set, measured side by side.

Each method of :data:`METHODS` is fitted on the same training split and its
Bayesian model average is evaluated on the test split:

* classification: accuracy, NLL, ECE, Brier, OOD AUROC (predictive entropy of
  the test inputs against a shifted copy of them, :func:`bayesjax.sweep.ood_inputs`),
  and top-1 agreement and total variation against the HMC reference
  predictive (Izmailov et al. 2021, "What are Bayesian neural network
  posteriors really like?") when the reference ran;
* regression: RMSE, mixture NLL and Gaussian NLL in original units.

Times exclude JAX compilation: ``train_seconds`` is the wall clock of fitting
(the optimizer / sampler run and drawing the predictive's samples; for
Laplace, the curvature fit plus the MAP it starts from) and
``predict_seconds`` that of the test-set predictive of the fitted posterior,
each minus the time JAX spent tracing, lowering and compiling (or loading
from the persistent cache), which is reported as ``compile_seconds``.

HMC (full batch, Stan window adaptation) is the reference. It runs only when
the model has at most ``hmc_max_params`` weights (:data:`HMC_MAX_PARAMS` by
default): each full-batch gradient costs N x D, and beyond that its default
budget is neither affordable nor long enough to mix. Even within it, it is a
short-budget reference, not Izmailov et al.'s: read agreement and total
variation as closeness to this reference.

Example:
  >>> config = CompareConfig(dataset="iris", methods=("map", "sgld", "hmc"), steps=500)
  >>> rows = run_compare(config, "results/compare")
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math
import pathlib
import sys
import time
from typing import Callable, NamedTuple

import jax
import numpy as np
import optax

import bayesjax as bj
from bayesjax._checks import check_int, check_positive
from bayesjax.base import num_params
from bayesjax.sweep import OOD_SHIFTS, ood_inputs
from bayesjax.types import Params, PRNGKey

HMC_MAX_PARAMS = 10_000
"""Largest model (weights) for the HMC reference by default; the digits MLP 50-50 has 6,310."""

REFERENCE = "hmc"
SGMCMC_RATE = 0.15
"""Per-example SG-MCMC step (see :meth:`Problem.rate`): 1.04e-4 on digits' 1,437 training images."""
SGHMC_FRICTION = 0.1
CYCLES = 4
SWAG_RATE = 0.05
SWAG_RANK = 20
HMC_LEAPFROG_STEPS = 10


class Budget(NamedTuple):
    """How much work a method gets.

    Attributes:
      steps: optimizer / sampler steps per member or chain (HMC: transitions);
        ``None`` for post-hoc methods, which start from another method's fit.
      members: ensemble members or chains, vmapped in one jit.
      samples: draws in the predictive (Laplace GLM: function-space draws of its Monte Carlo parts).
    """

    steps: int | None
    members: int
    samples: int


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """A comparison's settings (see ``bayesjax compare --help``).

    ``steps``, ``members`` and ``samples``, when given, replace that entry of
    every method's default :class:`Budget` (tiny runs, tests). ``methods=None``
    is every method the model allows; ``step_size=None`` is
    :data:`SGMCMC_RATE` per example; ``ood=None`` is ``rot90`` for images,
    else ``noise``.
    """

    dataset: str = "digits"
    methods: tuple[str, ...] | None = None
    model: str = "mlp"
    hidden: tuple[int, ...] = (50, 50)
    prior_scale: float = 1.0
    temperature: float = 1.0
    noise_std: float = 0.15
    batch_size: int = 128
    learning_rate: float = 1e-3
    step_size: float | None = None
    steps: int | None = None
    members: int | None = None
    samples: int | None = None
    laplace_predictive: str = "glm"
    ood: str | None = None
    hmc_max_params: int = HMC_MAX_PARAMS
    seed: int = 0
    split: int = 0
    data_root: str | None = None

    def validate(self) -> "CompareConfig":
        """Raises ValueError on settings that are wrong whatever the data; returns self."""
        if self.methods is not None:
            unknown = [m for m in self.methods if m not in METHODS]
            if unknown:
                raise ValueError(f"unknown method(s) {unknown}; available: {', '.join(METHODS)}")
            if not self.methods or len(set(self.methods)) != len(self.methods):
                raise ValueError(f"methods must be a non-empty list without repeats, got {list(self.methods)}")
        if self.model not in ("mlp", "cnn"):
            raise ValueError(f"model must be 'mlp' or 'cnn', got {self.model!r}")
        if self.laplace_predictive not in ("glm", "mc"):
            raise ValueError(f"laplace_predictive must be 'glm' or 'mc', got {self.laplace_predictive!r}")
        if self.ood is not None and self.ood not in OOD_SHIFTS:
            raise ValueError(f"ood must be one of {OOD_SHIFTS}, got {self.ood!r}")
        if self.steps is not None:
            check_int("steps", self.steps, minimum=2)  # burn-in needs room
        for name in ("members", "samples"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name))
        for name in ("batch_size", "hmc_max_params"):
            check_int(name, getattr(self, name))
        for width in self.hidden:
            check_int("hidden width", width)
        for name in ("prior_scale", "temperature", "noise_std", "learning_rate"):
            check_positive(name, getattr(self, name))
        if self.step_size is not None:
            check_positive("step_size", self.step_size)
        return self

    def budget(self, name: str) -> Budget:
        """The method's default budget with this configuration's overrides."""
        default = METHODS[name].budget
        return Budget(
            default.steps if self.steps is None or default.steps is None else self.steps,
            default.members if self.members is None else self.members,
            default.samples if self.samples is None else self.samples,
        )


class Problem(NamedTuple):
    """What every method shares: data, model, target, starting point, keys.

    Attributes:
      config: the validated configuration (``ood`` resolved).
      dataset: the data set.
      model: the network.
      log_joint: the tempered target.
      num_params: weights of the model.
      x_ood: the shifted test inputs (classification), else ``None``.
      predict_draws: jitted ``(samples, x) -> Predictive`` shared by every
        method that predicts from stored draws, so equal shapes compile once.
      params: ``() -> params``, the shared initialization of single runs (MAP, VI, SWAG),
        computed on first use.
      key: root of the methods' keys (:func:`_method_key`).
    """

    config: CompareConfig
    dataset: bj.data.Dataset
    model: bj.models.Model
    log_joint: bj.LogJoint
    num_params: int
    x_ood: np.ndarray | None
    predict_draws: Callable
    params: Callable[[], Params]
    key: PRNGKey

    def init(self, key: PRNGKey) -> Params:
        """A fresh initialization (each chain or member gets its own key)."""
        return self.model.init(key, self.dataset.x_train[:1])

    @property
    def data(self):
        return self.dataset.x_train, self.dataset.y_train

    @property
    def num_data(self) -> int:
        return len(self.dataset.y_train)

    @property
    def batch_size(self) -> int:
        return min(self.config.batch_size, self.num_data)

    def rate(self, per_example: float) -> float:
        """A plain gradient step's size for a per-example learning rate.

        The log-joint sums over N examples and a Gaussian likelihood's
        curvature per example is ``noise_std**-2`` (a categorical's at most
        1/4), so SG-MCMC and SWAG's SGD take ``per_example / N`` steps, times
        ``noise_std**2`` in regression: one default for any data set size and
        either task.
        """
        curvature = 1.0 if self.dataset.task == "classification" else self.config.noise_std**-2
        return per_example / (self.num_data * curvature)

    @property
    def step_size(self) -> float:
        """SG-MCMC step size: ``config.step_size``, else :data:`SGMCMC_RATE` per example."""
        return self.config.step_size or self.rate(SGMCMC_RATE)


class Fitted(NamedTuple):
    """A fitted posterior, ready to predict.

    Attributes:
      predict: ``(args, x) -> Predictive``, jitted or jitted inside.
      args: the posterior's arrays (stacked draws, or a Laplace posterior and a key).
      params_map: the point estimate, for methods that start from it (MAP only).
    """

    predict: Callable
    args: object
    params_map: Params | None = None


# ----------------------------------------------------------------------------- fitting


def _mesh(num_chains: int):
    """A mesh splitting ``num_chains`` over as many devices as divide it (None when that is one)."""
    devices = math.gcd(num_chains, jax.device_count())
    return bj.sharding.mesh(chains=devices) if devices > 1 else None


def _run(problem: Problem, algorithm: bj.Algorithm, key: PRNGKey, budget: Budget, *, num_chains: int = 1,
         full_batch: bool = False, burnin: int = 0, sampled_fraction: float = 1.0) -> bj.Posterior:
    """``bj.run``: a single run starts from ``problem.params``, several chains from their own inits.

    Markov chains keep ``samples / chains`` draws each, spread evenly over
    the steps after ``burnin`` (of which ``sampled_fraction`` are sampling steps).
    """
    per_chain = -(-budget.samples // num_chains)
    thin = max(1, int(sampled_fraction * (budget.steps - burnin)) // per_chain)
    start = problem.init if num_chains > 1 else problem.params()
    return bj.run(key, algorithm, start, problem.data, num_steps=budget.steps,
                  batch_size=None if full_batch else problem.batch_size, num_chains=num_chains, burnin=burnin,
                  thin=thin, num_samples=per_chain, progress=False, mesh=_mesh(num_chains))


def _draws(problem: Problem, algorithm: bj.Algorithm, key: PRNGKey, budget: Budget, **run_kwargs) -> Fitted:
    """Runs ``algorithm`` and keeps ``budget.samples`` draws of its posterior."""
    run_key, sample_key = jax.random.split(key)
    posterior = _run(problem, algorithm, run_key, budget, **run_kwargs)
    return Fitted(problem.predict_draws, posterior.sample(sample_key, budget.samples))


def _adam(problem: Problem) -> optax.GradientTransformation:
    return optax.adam(problem.config.learning_rate)


def _swag(problem: Problem, budget: Budget) -> dict:
    """SWAG's SGD (momentum 0.9, :data:`SWAG_RATE` per example), collecting from half-way about once
    per epoch (at least :data:`SWAG_RANK` times when the budget allows)."""
    start = budget.steps // 2
    every = max(1, min(problem.num_data // problem.batch_size, (budget.steps - start) // SWAG_RANK))
    return {"optimizer": optax.sgd(problem.rate(SWAG_RATE), momentum=0.9), "start_step": start,
            "collect_every": every, "rank": SWAG_RANK}


def fit_map(problem: Problem, budget: Budget, key: PRNGKey, base: Fitted | None) -> Fitted:
    fitted = _draws(problem, bj.map(problem.log_joint, _adam(problem)), key, budget)
    return fitted._replace(params_map=jax.tree.map(lambda leaf: leaf[0], fitted.args))


def _laplace(hessian: str, subset: str) -> Callable:
    """A post-hoc Laplace fit at the MAP (``base``) with the configured predictive."""

    def fit(problem: Problem, budget: Budget, key: PRNGKey, base: Fitted) -> Fitted:
        posterior = bj.laplace(problem.log_joint, base.params_map, problem.data, hessian=hessian, subset=subset)
        if problem.config.laplace_predictive == "mc":
            return Fitted(problem.predict_draws, posterior.sample(key, budget.samples))

        def predict(args, x):  # jitted inside, and not jittable from outside
            post, glm_key = args
            return post.predictive_glm(x, "probit", key=glm_key, num_samples=budget.samples)

        return Fitted(predict, (posterior, key))

    return fit


def fit_meanfield_vi(problem: Problem, budget: Budget, key: PRNGKey, base: Fitted | None) -> Fitted:
    return _draws(problem, bj.meanfield_vi(problem.log_joint, _adam(problem)), key, budget)


def fit_swag(problem: Problem, budget: Budget, key: PRNGKey, base: Fitted | None) -> Fitted:
    return _draws(problem, bj.swag(problem.log_joint, **_swag(problem, budget)), key, budget)


def fit_multiswag(problem: Problem, budget: Budget, key: PRNGKey, base: Fitted | None) -> Fitted:
    algorithm = bj.multiswag(problem.log_joint, num_members=budget.members, init=problem.init,
                             mesh=_mesh(budget.members), **_swag(problem, budget))
    return _draws(problem, algorithm, key, budget)


def fit_deep_ensemble(problem: Problem, budget: Budget, key: PRNGKey, base: Fitted | None) -> Fitted:
    algorithm = bj.ensemble(bj.map(problem.log_joint, _adam(problem)), budget.members, init=problem.init,
                            mesh=_mesh(budget.members))
    return _draws(problem, algorithm, key, budget)


def _chains(build: Callable[[Problem, Budget], bj.Algorithm], burnin_fraction: float,
            sampled_fraction: float = 1.0, full_batch: bool = False) -> Callable:
    """Markov chains from independent starts, draws kept after ``burnin_fraction`` of the steps."""

    def fit(problem: Problem, budget: Budget, key: PRNGKey, base: Fitted | None) -> Fitted:
        return _draws(problem, build(problem, budget), key, budget, num_chains=budget.members,
                      burnin=int(burnin_fraction * budget.steps), sampled_fraction=sampled_fraction,
                      full_batch=full_batch)

    return fit


def _sgld(problem: Problem, budget: Budget) -> bj.Algorithm:
    return bj.sgld(problem.log_joint, problem.step_size)


def _sghmc(problem: Problem, budget: Budget) -> bj.Algorithm:
    # SGD-with-momentum form: the drift moves at step_size / friction, so this matches SGLD's drift.
    return bj.sghmc(problem.log_joint, SGHMC_FRICTION * problem.step_size, SGHMC_FRICTION)


def _cyclical_sgld(problem: Problem, budget: Budget) -> bj.Algorithm:
    return bj.cyclical_sgld(problem.log_joint, problem.step_size, min(CYCLES, budget.steps), budget.steps)


def _hmc(problem: Problem, budget: Budget) -> bj.Algorithm:
    return bj.hmc(problem.log_joint, step_size=1e-3, num_integration_steps=HMC_LEAPFROG_STEPS,
                  num_adaptation_steps=budget.steps // 2)


# ----------------------------------------------------------------------------- the table


def _small_model(problem: Problem) -> str | None:
    limit = problem.config.hmc_max_params
    if problem.num_params > limit:
        return f"the model has {problem.num_params:,} weights, more than the HMC limit {limit:,} (--hmc-max-params)"
    return None


class Method(NamedTuple):
    """One row of the comparison.

    Attributes:
      fit: ``(problem, budget, key, base) -> Fitted``; ``base`` is the fit of ``requires``.
      budget: default :class:`Budget`.
      summary: one line for ``--help``.
      requires: a method whose fit this one starts from (its time is added to this one's).
      available: ``problem -> reason`` it cannot run, or ``None``.
    """

    fit: Callable
    budget: Budget
    summary: str
    requires: str | None = None
    available: Callable[[Problem], str | None] = lambda problem: None


METHODS: dict[str, Method] = {
    "map": Method(fit_map, Budget(2000, 1, 1), "Adam at --learning-rate"),
    "laplace_diag": Method(_laplace("diag", "all"), Budget(None, 1, 100),
                           "diagonal GGN Laplace at the MAP", requires="map"),
    "laplace_kfac": Method(_laplace("kfac", "all"), Budget(None, 1, 100),
                           "KFAC GGN Laplace at the MAP (Dense and Conv layers)", requires="map"),
    "laplace_last_layer": Method(_laplace("kfac", "last_layer"), Budget(None, 1, 100),
                                 "KFAC GGN Laplace of the last layer at the MAP", requires="map"),
    "meanfield_vi": Method(fit_meanfield_vi, Budget(2000, 1, 50), "Bayes by Backprop, Adam at --learning-rate"),
    "swag": Method(fit_swag, Budget(2000, 1, 30),
                   f"SGD momentum 0.9, collects from half-way ~once per epoch, rank {SWAG_RANK}"),
    "multiswag": Method(fit_multiswag, Budget(2000, 4, 40), "SWAG members from independent inits"),
    "deep_ensemble": Method(fit_deep_ensemble, Budget(2000, 4, 4), "MAP members from independent inits"),
    "sgld": Method(_chains(_sgld, 0.5), Budget(2000, 4, 100), "--step-size, second half kept"),
    "sghmc": Method(_chains(_sghmc, 0.5), Budget(2000, 4, 100),
                    f"friction {SGHMC_FRICTION}, SGLD's drift, second half kept"),
    "cyclical_sgld": Method(_chains(_cyclical_sgld, 0.0, sampled_fraction=0.5), Budget(2000, 4, 100),
                            f"{CYCLES} cosine cycles from --step-size, sampling phases kept"),
    "hmc": Method(_chains(_hmc, 0.5, full_batch=True), Budget(1000, 2, 100),
                  f"full batch, {HMC_LEAPFROG_STEPS} leapfrog steps, adapts in the first half; the reference",
                  available=_small_model),
}


def describe_methods() -> str:
    """The method table with default budgets, for ``--help``."""
    lines = [f"{'method':<20}{'steps':>6}{'members':>8}{'samples':>8}  settings"]
    for name, method in METHODS.items():
        budget = method.budget
        steps = "MAP" if budget.steps is None else budget.steps
        lines.append(f"{name:<20}{steps:>6}{budget.members:>8}{budget.samples:>8}  {method.summary}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- timing


class Stopwatch:
    """Wall-clock seconds of a block, split into JAX compilation and the rest.

    Compilation is the union of JAX's ``/jax/core/compile/*`` event spans
    (tracing, lowering, XLA compilation or a persistent-cache load) inside
    the block, read through :mod:`jax.monitoring`.

    Attributes (after the block):
      seconds: wall clock minus compilation.
      compile_seconds: compilation.
    """

    def __enter__(self) -> "Stopwatch":
        self._spans: list[tuple[float, float]] = []
        jax.monitoring.register_event_time_span_listener(self._listen)
        self._start = time.time()
        return self

    def _listen(self, event: str, start: float, end: float, **kwargs) -> None:
        if event.startswith("/jax/core/compile/"):
            self._spans.append((start, end))

    def __exit__(self, *exc) -> None:
        end = time.time()
        jax.monitoring.unregister_event_time_span_listener(self._listen)
        covered, reach = 0.0, self._start
        for start, stop in sorted(self._spans):
            start, stop = max(start, reach), min(stop, end)
            if stop > start:
                covered += stop - start
                reach = stop
        self.compile_seconds = covered
        self.seconds = end - self._start - covered


# ----------------------------------------------------------------------------- running


def setup(config: CompareConfig) -> tuple[Problem, list[str], dict[str, str]]:
    """Loads the data and builds the shared target; decides which methods run.

    Everything that can fail on bad arguments fails here, before any training.

    Returns:
      ``(problem, methods, skipped)``: the methods to run, in table order
      (or the requested order), and the default ones left out, with the reason.

    Raises:
      ValueError: unknown data set, bad settings, an image OOD shift on
        non-image data, or a requested method the model does not allow.
    """
    config.validate()
    dataset = bj.data.load(config.dataset, split=config.split, root=config.data_root)
    classification = dataset.task == "classification"
    num_outputs = dataset.num_classes if classification else 1
    model = bj.models.cnn(num_outputs) if config.model == "cnn" else bj.models.mlp(config.hidden, num_outputs)
    likelihood = bj.likelihoods.categorical() if classification else bj.likelihoods.gaussian(config.noise_std)
    log_joint = bj.log_joint(model.apply, bj.priors.gaussian(config.prior_scale), likelihood,
                             num_data=len(dataset.y_train), temperature=config.temperature)
    shapes = jax.eval_shape(model.init, jax.random.key(0), dataset.x_train[:1])
    x_ood = None
    if classification:
        config = dataclasses.replace(config, ood=config.ood or ("rot90" if dataset.x_test.ndim == 4 else "noise"))
        x_ood = ood_inputs(dataset.x_test, config.ood)
    elif config.ood is not None:
        raise ValueError(f"ood is for classification; {dataset.name!r} is a regression data set")
    predict_draws = jax.jit(lambda samples, x: bj.predictive(model.apply, samples, x, likelihood))
    key, init_key = jax.random.split(jax.random.key(config.seed))
    params = functools.cache(lambda: jax.jit(model.init)(init_key, dataset.x_train[:1]))
    problem = Problem(config, dataset, model, log_joint, num_params(shapes), x_ood, predict_draws, params, key)

    names, skipped = list(config.methods or METHODS), {}
    for name in names:
        reason = METHODS[name].available(problem)
        if reason is not None and config.methods is not None:
            raise ValueError(f"{name} cannot run: {reason}")
        if reason is not None:
            skipped[name] = reason
    return problem, [n for n in names if n not in skipped], skipped


def _method_key(problem: Problem, name: str) -> PRNGKey:
    """A method's key depends on the seed and its name only, not on which others run."""
    return jax.random.fold_in(problem.key, list(METHODS).index(name))


class _Trained(NamedTuple):
    fitted: Fitted
    train_seconds: float
    compile_seconds: float


def _train(problem: Problem, name: str, trained: dict[str, _Trained]) -> _Trained:
    """Fits ``name`` (after what it requires), memoized in ``trained``."""
    if name in trained:
        return trained[name]
    method = METHODS[name]
    base = _train(problem, method.requires, trained) if method.requires else None
    with Stopwatch() as watch:
        fitted = method.fit(problem, problem.config.budget(name), _method_key(problem, name), base and base.fitted)
        jax.block_until_ready(jax.tree.leaves(fitted.args))
    seconds, compile_seconds = watch.seconds, watch.compile_seconds
    if base is not None:
        seconds, compile_seconds = seconds + base.train_seconds, compile_seconds + base.compile_seconds
    trained[name] = _Trained(fitted, seconds, compile_seconds)
    return trained[name]


def _evaluate(problem: Problem, fitted: Fitted) -> tuple[dict, object, float, float]:
    """The test-set metrics, the predictive, and its seconds without and of compilation."""
    dataset = problem.dataset
    with Stopwatch() as watch:
        pred = jax.block_until_ready(fitted.predict(fitted.args, dataset.x_test))
    metrics = bj.metrics.evaluate(pred, dataset.y_test, y_std=dataset.y_std)
    if problem.x_ood is not None:
        pred_ood = fitted.predict(fitted.args, problem.x_ood)
        metrics["ood_auroc"] = float(bj.metrics.auroc(pred.entropy, pred_ood.entropy))
    return metrics, pred, watch.seconds, watch.compile_seconds


def run_compare(config: CompareConfig, out: str | pathlib.Path, progress: bool = True) -> list[dict]:
    """Fits and evaluates every method; writes the results and figures to ``out``.

    Writes ``results.json`` (configuration, budgets, skipped or diverged
    methods, rows), ``results.csv``, for classification ``reliability.png``
    (a grid of every method's) and ``reliability_<method>.png``, and for 1-D regression
    ``bands.png`` (:func:`bayesjax.plots.predictive_bands`: the MAP against
    the reference, else the deep ensemble, else another Bayesian method).
    A method whose chains all diverge is reported and left out.

    Args:
      config: the comparison.
      out: results folder (created after the last method, so bad arguments write nothing).
      progress: one line per method on stderr.

    Returns:
      One row per method: ``method``, ``train_seconds``, ``predict_seconds``,
      ``compile_seconds``, the metrics of :func:`bayesjax.metrics.evaluate`,
      and for classification ``ood_auroc``, ``agreement`` and
      ``total_variation`` (``None`` without the reference).
    """
    problem, names, skipped = setup(config)
    dataset = problem.dataset
    for name, reason in skipped.items():
        print(f"compare: skipping {name}: {reason}", file=sys.stderr)
    trained, predictives, rows = {}, {}, []
    for i, name in enumerate(names):
        try:
            result = _train(problem, name, trained)
        except bj.DivergenceError as error:
            skipped[name] = str(error)
            print(f"compare: {name} failed: {error}", file=sys.stderr)
            continue
        metrics, pred, predict_seconds, predict_compile = _evaluate(problem, result.fitted)
        rows.append({"method": name, "train_seconds": result.train_seconds, "predict_seconds": predict_seconds,
                     "compile_seconds": result.compile_seconds + predict_compile, **metrics})
        predictives[name] = pred
        if progress:
            print(f"compare: [{i + 1}/{len(names)}] {name}: train {result.train_seconds:.1f} s, "
                  f"compile {rows[-1]['compile_seconds']:.1f} s", file=sys.stderr)
    if not rows:
        raise bj.DivergenceError(f"every method diverged: {skipped}")
    reference = predictives.get(REFERENCE)
    if dataset.task == "classification":
        for row in rows:
            pred = predictives[row["method"]]
            row["agreement"] = None if reference is None else float(bj.metrics.agreement(reference, pred))
            row["total_variation"] = None if reference is None else float(bj.metrics.total_variation(reference, pred))
    _write(problem, rows, skipped, predictives, {n: trained[n].fitted for n in predictives}, pathlib.Path(out))
    return rows


def _bands_methods(names: list[str]) -> list[str]:
    """MAP (the standard NN) and one Bayesian NN: the reference, else the deep ensemble, else the first other."""
    bayesian = [n for n in (REFERENCE, "deep_ensemble", *names) if n in names and n != "map"]
    return [n for n in ("map",) if n in names] + bayesian[:1]


def _write(problem: Problem, rows: list[dict], skipped: dict, predictives: dict, fits: dict,
           out: pathlib.Path) -> None:
    from bayesjax import plots

    config, dataset = problem.config, problem.dataset
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "config": dataclasses.asdict(config),
        "budgets": {n: config.budget(n)._asdict() for n in predictives},
        "skipped": skipped,
        "reference": REFERENCE if REFERENCE in predictives else None,
        "timing": "train_seconds and predict_seconds exclude JAX compilation, reported as compile_seconds",
        "results": rows,
    }
    (out / "results.json").write_text(json.dumps(payload, indent=2))
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if dataset.task == "classification":
        plots.reliability_grid(predictives, dataset.y_test, out / "reliability.png")
        for name, pred in predictives.items():
            plots.reliability_diagram({name: pred}, dataset.y_test, out / f"reliability_{name}.png")
    elif dataset.x_train.ndim == 2 and dataset.x_train.shape[1] == 1:
        x = dataset.x_train[:, 0]
        low, high = x.min(), x.max()
        grid = np.linspace(low - 0.5 * (high - low), high + 0.5 * (high - low), 300, dtype=x.dtype)
        bands = {n: fits[n].predict(fits[n].args, grid[:, None]) for n in _bands_methods(list(predictives))}
        plots.predictive_bands(bands, grid, x, dataset.y_train, out / "bands.png", y_mean=dataset.y_mean,
                               y_std=dataset.y_std)

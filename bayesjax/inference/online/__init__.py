r"""Online (sequential) Bayesian learning over a stream: today's posterior is tomorrow's prior.

    log p(theta | D_{1:t}) = c_lik log p(D_t | theta) + log p(theta | D_{1:t-1}) + const

with a Gaussian belief ``N(mu_t, P_t^{-1})`` carried from batch to batch, the
previous belief loosened by a dynamics step before each update, and each
batch's likelihood reweighted (Duran-Martin, Sanchez-Betancourt, Shestopaloff
& Murphy 2024, "A unifying framework for generalised Bayesian online learning
in non-stationary environments"). One concept per file:

* :mod:`.belief`: the belief ``P = c_prior Delta + K`` in the Laplace
  package's curvature structures, temperature and likelihood weight.
* :mod:`.dynamics`: the dynamics step, exponential forgetting (``gamma``)
  and random-walk process noise (``q``).
* :mod:`.prequential`: the one-step-ahead (prequential) log predictive.
* :mod:`.ekf`: the extended Kalman filter, diagonal or full (Kalman 1960;
  Ollivier 2018).
* :mod:`.laplace`: sequential Laplace, diag / KFAC / full (Ritter et al. 2018).
* :mod:`.vi`: sequential mean-field VI (Nguyen et al. 2018).

Every step records, before its update, the batch's one-step-ahead log
predictive in ``info.log_predictive``; run a stream in order with
``bj.run(..., shuffle=False)`` and the prequential log-likelihood curve is
``post.info.log_predictive``.
"""
from __future__ import annotations

import inspect

from bayesjax.base import Algorithm
from bayesjax.inference.online import ekf, laplace, vi
from bayesjax.inference.online.dynamics import Forgetting
from bayesjax.inference.online.ekf import EKFInfo, EKFState
from bayesjax.inference.online.laplace import OnlineLaplaceInfo, OnlineLaplaceState
from bayesjax.inference.online.vi import OnlineVIInfo, OnlineVIState
from bayesjax.logjoint import LogJoint

METHODS = ("ekf", "laplace_diag", "laplace_kfac", "laplace_full", "vi")


def _builder(method: str):
    if method == "ekf":
        return ekf.build, {}
    if method == "vi":
        return vi.build, {}
    return laplace.build, {"hessian": method.removeprefix("laplace_")}


def online(log_joint: LogJoint, method: str = "ekf", **options) -> Algorithm:
    r"""An online learner over a stream, as an :class:`~bayesjax.base.Algorithm`.

    ``init(key, params)`` is the tempered prior centred on ``params``; each
    ``step(key, state, batch)`` applies the dynamics step, records the batch's
    one-step-ahead log predictive ``log p(y_B | x_B, D_{1:t-1})`` and absorbs
    the batch; ``sample(key, state, n)`` draws from the current belief (feed
    ``bj.predictive``). The batch log-likelihood enters unscaled (not by
    ``num_data / |B|``) and tempered by ``1 / T`` of the log-joint; the
    log-joint's ``num_data`` is unused here, but ``bj.run`` checks it against
    the length of the stream it is given.

    Update, for batch t with the belief ``N(mu_{t-1}, P_{t-1}^{-1})``,
    ``P = c_prior Delta + K`` (prior precision Delta, data's share K):

        dynamics:   P_{t|t-1} = c_prior Delta + gamma K_{t-1},  then Sigma_{t|t-1} += q I,
        posterior:  log q_t(theta) = c_lik log p(D_t | theta) + log q_{t|t-1}(theta) + const,

    approximated by the method's Gaussian (EKF's linearization, Laplace at
    the batch's MAP, or mean-field VI); ``c_lik = w_t / T`` carries the
    temperature and the likelihood weight, and the initial belief is the
    prior raised to ``c_prior`` (``1 / T`` or 1). The EKF has no step size;
    Laplace's default ``"gauss_newton"`` inner optimizer needs none (its
    steps are chosen by a line search), and an optax ``optimizer`` given to
    Laplace or VI meets the gradient of the batch's *summed* (not averaged)
    tempered log-likelihood plus the belief's log density, so prefer a
    scale-free optimizer (``optax.adam(1e-2)``, VI's default).

    State and info: :class:`EKFState`, :class:`OnlineLaplaceState` or
    :class:`OnlineVIState` (the belief: ``mean``, its precision or scales,
    ``count``) and their infos, each with ``log_predictive`` (the batch's
    one-step-ahead log predictive, recorded before the update) and
    ``log_likelihood`` (the plug-in value at the predicted mean); Laplace
    adds ``grad_norm``, VI ``elbo``.

    Methods, and the linear-Gaussian streams on which the belief after the
    last batch is the exact batch posterior (whatever the batch split):

    ==================  =======================================  ===========================================
    method              update                                   exact on linear-Gaussian streams
    ==================  =======================================  ===========================================
    ``"ekf"``           extended Kalman filter,                  ``"full"``: always (Kalman 1960);
                        ``structure="diag"`` or ``"full"``       ``"diag"``: each batch's Gram is diagonal
    ``"laplace_diag"``  MAP under the belief, diagonal GGN       each batch's Gram is diagonal
    ``"laplace_kfac"``  MAP under the belief, KFAC GGN           one single-output dense layer, each batch's
                                                                 inputs centred
    ``"laplace_full"``  MAP under the belief, dense GGN          always (Gauss-Newton)
    ``"vi"``            mean-field VI, previous q as the prior   at each ELBO's optimum, when the posterior
                                                                 is diagonal
    ==================  =======================================  ===========================================

    Args:
      log_joint: the tempered target from ``bj.log_joint`` with a Gaussian prior.
      method: one of ``"ekf"``, ``"laplace_diag"``, ``"laplace_kfac"``,
        ``"laplace_full"``, ``"vi"``.
      **options: the method's keywords, listed below (each method's
        ``build`` in :mod:`bayesjax.inference.online.ekf`,
        :mod:`bayesjax.inference.online.laplace` and
        :mod:`bayesjax.inference.online.vi` is the function behind).

    Keyword Args:
      forgetting (float): all methods: gamma in (0, 1], the decay of the
        data's share of the precision before each batch (1: none). Default 1.
      process_noise (float): all but ``"laplace_kfac"``: q >= 0, random-walk
        variance added to the belief before each batch. Default 0.
      likelihood_weight (float | Callable): all methods: w > 0 or a schedule
        ``count -> w`` on each batch's log-likelihood. Default 1.
      predictive (str): all methods: ``"glm"`` or ``"mc"`` for the
        one-step-ahead log predictive. Default ``"glm"``.
      num_predictive_samples (int): all methods: draws of the ``"mc"``
        predictive. Default 16.
      structure (str): ``"ekf"``: ``"diag"`` or ``"full"`` (small models).
        Default ``"diag"``.
      optimizer (str | optax.GradientTransformation): ``"laplace_*"``:
        ``"gauss_newton"`` (default) or an optax optimizer for each batch's
        MAP; ``"vi"``: an optax optimizer (default ``optax.adam(1e-2)``).
      num_inner_steps (int): ``"laplace_*"`` and ``"vi"``: optimizer steps
        per batch. Default 1 (Laplace), 10 (VI).
      num_mc_samples (int): ``"vi"``: reparametrized draws per inner step. Default 1.
      parametrization (str): ``"vi"``: ``"softplus"`` or ``"log"`` for the
        scales. Default ``"softplus"``.

    Returns:
      The :class:`~bayesjax.base.Algorithm`.

    Raises:
      ValueError: an unknown method, a bad hyperparameter (e.g. ``forgetting``
        outside (0, 1]), or a non-Gaussian prior.
      TypeError: a keyword the method does not take, or ``log_joint`` that is
        not a ``LogJoint``.

    Example:
      >>> algo = bj.online(lj, "ekf", process_noise=1e-4)
      >>> post = bj.run(key, algo, params, (x, y), num_steps=len(x) // 20, batch_size=20,
      ...               shuffle=False, progress=False)
      >>> prequential_nll = -post.info.log_predictive.sum() / len(x)
      >>> pred = bj.predictive(model.apply, post.sample(key, 100), x_test, lj.likelihood)

    References:
      G. Duran-Martin, L. Sanchez-Betancourt, A. Shestopaloff and K. Murphy,
      "A unifying framework for generalised Bayesian online learning in
      non-stationary environments", 2024. Y. Ollivier, "Online natural
      gradient as a Kalman filter", 2018. H. Ritter, A. Botev and D. Barber,
      "Online structured Laplace approximations for overcoming catastrophic
      forgetting", NeurIPS 2018. C. V. Nguyen, Y. Li, T. D. Bui and R. E.
      Turner, "Variational continual learning", ICLR 2018.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    build, fixed = _builder(method)
    accepted = [name for name in inspect.signature(build).parameters if name not in ("log_joint", *fixed)]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"online method {method!r} does not take {unknown}; it takes {accepted}")
    return build(log_joint, **fixed, **options)


__all__ = [
    "EKFInfo",
    "EKFState",
    "Forgetting",
    "METHODS",
    "OnlineLaplaceInfo",
    "OnlineLaplaceState",
    "OnlineVIInfo",
    "OnlineVIState",
    "ekf",
    "laplace",
    "online",
    "vi",
]

"""HMC and NUTS runs on the linear problem that tests/inference/mcmc/ share (cached: one run per configuration)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np

import bayesjax as bj
from bayesjax.inference.mcmc.hmc import build_hmc
from bayesjax.inference.mcmc.nuts import build_nuts
from tests.helpers import linear_problem
from tests.helpers.linear_problem import NOISE, PRIOR, D
from tests.helpers.stats import chain_draws

N = 50
ADAPT, NUM_STEPS, CHAINS = 300, 1300, 4

data = functools.partial(linear_problem.data, N)
log_joint = functools.partial(linear_problem.log_joint, N)  # (temperature=1.0, tempering="posterior")


BUILD = {
    "hmc": lambda lj, **kw: build_hmc(lj, num_integration_steps=10, **kw),
    "nuts": lambda lj, **kw: build_nuts(lj, max_num_doublings=6, **kw),
}


def adapted_run(method, temperature, tempering="posterior"):
    """A run with a deliberately bad initial step size (1e-5) fixed by window adaptation (cached)."""
    return _adapted_run(method, float(temperature), tempering)


@functools.lru_cache(maxsize=None)
def adapted_algorithm(method, temperature, tempering):
    return BUILD[method](log_joint(temperature, tempering), step_size=1e-5, num_adaptation_steps=ADAPT)


def run_adapted(method, temperature, tempering, seed):
    """Reruns of one configuration share the algorithm object, hence one compile."""
    with jax.enable_x64(True):
        return bj.run(jax.random.key(seed), adapted_algorithm(method, temperature, tempering),
                      {"w": jnp.zeros(D)}, data(), num_steps=NUM_STEPS, num_chains=CHAINS, burnin=ADAPT,
                      progress=False)


@functools.lru_cache(maxsize=None)
def _adapted_run(method, temperature, tempering):
    post = run_adapted(method, temperature, tempering, seed=0)
    x, y = data()
    with jax.enable_x64(True):
        exact = bj.linear.posterior(jnp.asarray(x), jnp.asarray(y), NOISE, PRIOR, temperature=temperature,
                                    tempering=tempering)
    return post, chain_draws(post), tuple(np.asarray(a) for a in exact)

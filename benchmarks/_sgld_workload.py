"""The SGLD workload of ``sgmcmc.py`` and ``scaling.py``: the digits MLP, ``bj.run`` and a hand-written loop.

The 2-hidden-layer MLP (50 units each, 10 outputs) on digits, minibatches of
128, SGLD with learning rate 0.15 per example (Langevin step eps = 0.15 / N),
Gaussian prior (scale 1), categorical likelihood, T = 1:

    theta <- theta + eps * grad log p(theta | batch) + sqrt(2 eps) xi

JAX and bayesjax are imported inside the functions: the fresh-process
children of ``sgmcmc.py`` time that import themselves, and its posteriors
child reads the constants here under an interpreter without JAX.
"""
from __future__ import annotations

LEARNING_RATE = 0.15
BATCH_SIZE = 128
HIDDEN = (50, 50)
NUM_CLASSES = 10
PRIOR_SCALE = 1.0


def setup():
    """Data, initial parameters and SGLD, as a user writes them: ``(dataset, params, algorithm)``."""
    import jax

    import bayesjax as bj

    ds = bj.data.load("digits")
    model = bj.models.mlp(list(HIDDEN), num_outputs=NUM_CLASSES)
    params = model.init(jax.random.key(0), ds.x_train[:1])
    lj = bj.log_joint(
        model.apply,
        bj.priors.gaussian(scale=PRIOR_SCALE),
        bj.likelihoods.categorical(),
        num_data=len(ds.y_train),
    )
    algo = bj.sgld(lj, LEARNING_RATE)
    return ds, params, algo


def bayesjax_runner(ds, params, algo, num_steps):
    """``(key, num_chains, **run_options) -> None``: one blocking ``bj.run``."""
    import jax

    import bayesjax as bj

    data = (ds.x_train, ds.y_train)

    def run(key, num_chains, **options):
        post = bj.run(key, algo, params, data, num_steps=num_steps, batch_size=BATCH_SIZE,
                      num_chains=num_chains, progress=False, **options)
        jax.block_until_ready((post.state, post.info))

    return run


def hand_runner(ds, params, num_steps, record=False):
    """The hand-written loop: ``(key, num_chains) -> None`` (blocking).

    Plain ``jnp`` MLP on the same initial weights, the same tempered target at
    T = 1 (N/B-scaled minibatch log-likelihood plus Gaussian log-prior),
    per-chain per-epoch permutations drawn inside the jit (``bj.run``'s
    minibatch scheme), noise drawn leaf by leaf, and the same update equation.
    Without ``record`` it is the leanest correct loop: the gradient alone (no
    log density), the label's log-probability picked by a one-hot mask, only
    the final positions kept. With ``record=True`` it also keeps every position
    and the per-step log density (what ``bj.run`` returns by default).
    """
    import functools

    import jax
    import jax.numpy as jnp

    num_data = len(ds.y_train)
    x = jnp.asarray(ds.x_train.reshape(num_data, -1))
    y = jnp.asarray(ds.y_train)
    steps_per_epoch = num_data // BATCH_SIZE
    step_size = LEARNING_RATE / num_data
    noise_scale = (2 * step_size) ** 0.5

    def forward(p, xb):
        h = jax.nn.relu(xb @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
        h = jax.nn.relu(h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"])
        return h @ p["Dense_2"]["kernel"] + p["Dense_2"]["bias"]

    def log_joint(p, xb, yb):
        log_probs = jax.nn.log_softmax(forward(p, xb))
        log_lik = num_data * jnp.mean(jnp.sum(jnp.where(yb[:, None] == jnp.arange(NUM_CLASSES), log_probs, 0.0), 1))
        log_prior = sum(jnp.sum(-0.5 * (w / PRIOR_SCALE) ** 2) for w in jax.tree.leaves(p))
        return log_lik + log_prior

    def update(key, p, xb, yb):
        value, grad = jax.value_and_grad(log_joint)(p, xb, yb) if record else (None, jax.grad(log_joint)(p, xb, yb))
        leaves, treedef = jax.tree.flatten(p)
        keys = jax.random.split(key, len(leaves))
        noise = treedef.unflatten([jax.random.normal(k, w.shape, w.dtype) for k, w in zip(keys, leaves)])
        return jax.tree.map(lambda w, g, n: w + step_size * g + noise_scale * n, p, grad, noise), value

    @functools.partial(jax.jit, static_argnames=("num_chains",))
    def sample(key, params, x, y, num_chains):
        chain_keys = jax.random.split(key, num_chains)
        perm_keys, step_keys = jax.vmap(lambda k: jax.random.split(k, 2))(chain_keys).swapaxes(0, 1)
        positions = jax.tree.map(lambda w: jnp.broadcast_to(w, (num_chains,) + w.shape), params)

        def body(carry, t):
            positions, perms = carry
            position = t % steps_per_epoch
            perms = jax.lax.cond(
                position == 0,
                lambda: jax.vmap(lambda k: jax.random.permutation(
                    jax.random.fold_in(k, t // steps_per_epoch), num_data))(perm_keys).astype(jnp.int32),
                lambda: perms,
            )
            index = jax.lax.dynamic_slice_in_dim(perms, position * BATCH_SIZE, BATCH_SIZE, axis=1)
            keys = jax.vmap(lambda k: jax.random.fold_in(k, t))(step_keys)
            positions, log_density = jax.vmap(update)(keys, positions, x[index], y[index])
            return (positions, perms), (positions, log_density) if record else None

        perms = jnp.zeros((num_chains, num_data), jnp.int32)
        (positions, _), trace = jax.lax.scan(body, (positions, perms), jnp.arange(num_steps))
        return positions, trace

    def run(key, num_chains):
        jax.block_until_ready(sample(key, params, x, y, num_chains))

    return run

"""The sharded SGLD run shared by the single- and two-process tests."""
import jax
import numpy as np

import bayesjax as bj

MODEL = bj.models.mlp([8], num_outputs=3)


def run(mesh, num_steps=20, **kwargs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=64).astype(np.int32)
    lj = bj.log_joint(MODEL.apply, bj.priors.gaussian(1.0), bj.likelihoods.categorical(), num_data=64)
    return bj.run(jax.random.key(1), bj.sgld(lj, 0.064), MODEL.init(jax.random.key(0), x[:1]), (x, y),
                  num_steps=num_steps, batch_size=16, num_chains=8, burnin=10, progress=False, mesh=mesh, **kwargs)


def named_leaves(post) -> dict:
    """The final state's and the infos' leaves on the host, by path (``state/inner/position/Dense_0/bias``, ...)."""
    tree = {"state": post.state, "info": post.info}
    return {jax.tree_util.keystr(path, simple=True, separator="/"): bj.sharding.to_host(leaf)
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}

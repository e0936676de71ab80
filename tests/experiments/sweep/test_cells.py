"""``run_chunk``: CNN cells one after another within a device equal the vmapped cells."""
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from bayesjax import data, models, sharding
from bayesjax.experiments.ood import ood_inputs
from bayesjax.experiments.sweep.cells import Setup, run_chunk
from tests.experiments.sweep.tiny_grid import CONFIG, VALUES

CNN_CONFIG = dataclasses.replace(CONFIG, model="cnn", num_steps=20, burnin=10, thin=5, num_chains=1,
                                 num_predictive_samples=2)


def test_cnn_cells_in_sequence_equal_vmapped_cells():
    """Six sharded cells: two device groups of three cells mapped in turn (the CNN path on the CPU) against
    one vmap of six (the path of every other model, here given the same CNN)."""
    ds = data.load("digits")
    model = models.cnn(10, channels=(4,), hidden=8)
    temperatures, seeds = jnp.array([1e-2, 0.1, 1.0, 1e-2, 0.1, 1.0]), jnp.array([0, 0, 0, 1, 1, 1], jnp.uint32)
    mesh = sharding.mesh(chains=math.gcd(6, jax.device_count()))
    place = sharding.chain_sharding(mesh)
    args = (jax.device_put(temperatures, place), jax.device_put(seeds, place), ds.x_train, ds.y_train,
            ds.x_test, ds.y_test, ood_inputs(ds.x_test, CNN_CONFIG.ood), -1)
    records = {}
    for name in ("cnn", "mlp"):  # the config's model name picks the path; the network is the CNN in both
        setup = Setup(dataclasses.replace(CNN_CONFIG, model=name), model, None, len(ds.y_train), 0)
        records[name] = np.stack([np.asarray(jax.device_get(run_chunk(setup, *args))[k], np.float64)
                                  for k in VALUES], axis=1)
    assert records["cnn"].shape == (6, len(VALUES))
    assert np.all(np.isfinite(records["cnn"][:, :5]))
    np.testing.assert_allclose(records["cnn"], records["mlp"], rtol=2e-3, atol=2e-3)

"""Stan window adaptation inside HMC and NUTS: it fixes a bad step size and estimates the mass matrix."""
import blackjax.diagnostics
import numpy as np
import pytest

from tests.helpers.mcmc_runs import ADAPT, NUM_STEPS, adapted_run

MASS_WINDOW = 100  # the last slow window of blackjax's Stan schedule for 300 steps: draws 150-249


@pytest.mark.parametrize("method", ["hmc", "nuts"])
def test_window_adaptation_fixes_a_bad_step_size(method):
    post, draws, (_, cov) = adapted_run(method, 1.0)
    state = post.state.inner
    step_size = np.asarray(state.step_size)
    # In whitened coordinates (mass matrix ~ posterior variances) a Gaussian
    # wants a leapfrog step of order 1; the initial 1e-5 is 5 orders off.
    assert np.all((step_size > 0.2) & (step_size < 2.0)), step_size
    # The adapted diagonal inverse mass matrix is Stan's shrunk sample variance
    # W / (W + 5) s^2 of the last slow window's W draws. log s^2 has standard
    # error sqrt(2 / ESS) with ESS = W x (ESS per draw of the squared centred
    # draws, read from each chain's draws after adaptation): 4 SE per entry.
    shrinkage = MASS_WINDOW / (MASS_WINDOW + 5)
    log_error = np.log(np.asarray(state.inverse_mass_matrix) / (shrinkage * np.diag(cov)))
    squares = (draws - draws.mean(1, keepdims=True)) ** 2
    ess_per_draw = np.stack([np.asarray(blackjax.diagnostics.effective_sample_size(c[None])) for c in squares])
    standard_error = np.sqrt(2 / (MASS_WINDOW * np.minimum(ess_per_draw / draws.shape[1], 1.0)))
    assert np.all(np.abs(log_error) < 4 * standard_error), (log_error, standard_error)
    # After adaptation the step size is frozen (HMC jitters it by up to 20%)
    # and acceptance is near the 0.8 target.
    jitter = 0.2 if method == "hmc" else 0.0
    used = np.asarray(post.info.step_size)
    for t, nominal in ((0, 1e-5), (ADAPT, step_size), (NUM_STEPS - 1, step_size)):
        assert np.all(np.abs(used[t] / nominal - 1) <= jitter + 1e-12), (t, used[t], nominal)
    assert np.all(np.abs(used[ADAPT:] / step_size - 1) <= jitter + 1e-12)
    if method == "hmc":
        assert np.std(used[ADAPT:, 0] / step_size[0]) > 0.05  # jitter ~ U(-0.2, 0.2): sd 0.115
    acceptance = np.asarray(post.info.acceptance_rate)[ADAPT:].mean(0)
    assert np.all((acceptance > 0.6) & (acceptance < 0.95)), acceptance
    assert not np.any(np.asarray(post.info.is_divergent)[ADAPT:])

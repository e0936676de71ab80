"""Out-of-distribution detection: the AUROC of uncertainty scores, in- against out-of-distribution."""
from __future__ import annotations

import jax.numpy as jnp

from bayesjax.types import Array

__all__ = ["auroc"]


def auroc(scores_in: Array, scores_out: Array) -> Array:
    """Area under the ROC curve for detecting out-of-distribution points.

    Positives are the out-of-distribution points; a HIGHER score must mean
    "more likely OOD" (e.g. predictive entropy or mutual information; negate
    a max-probability score). Computed exactly as the normalized Mann-Whitney
    U statistic, ties counted one half:

        AUROC = 1/(n_in n_out) sum_{j in out} sum_{i in in}
                    (1[s_j > s_i] + 1/2 1[s_j = s_i])

    by sorting the in-distribution scores and binary-searching each OOD score
    (O(n log n), jittable). Equals ``sklearn.metrics.roc_auc_score`` with
    labels 1 for ``scores_out`` and 0 for ``scores_in``. A NaN score (the
    uncertainty of a diverged posterior) makes the AUROC NaN.

    Args:
      scores_in: scores of in-distribution points, ``[n_in]`` (n_in >= 1).
      scores_out: scores of out-of-distribution points, ``[n_out]`` (n_out >= 1).

    Returns:
      Scalar AUROC in [0, 1] (0.5 is chance), or NaN.

    Example:
      >>> import jax.numpy as jnp
      >>> from bayesjax.metrics import auroc
      >>> float(auroc(jnp.array([0.1, 0.4]), jnp.array([0.4, 0.9])))
      0.875
    """
    scores_in = jnp.asarray(scores_in)
    scores_out = jnp.asarray(scores_out)
    for name, s in (("scores_in", scores_in), ("scores_out", scores_out)):
        if s.ndim != 1 or s.shape[0] == 0:
            raise ValueError(f"auroc: {name} must be a non-empty 1-D array, got shape {s.shape}")
    common = jnp.result_type(scores_in, scores_out)
    sorted_in = jnp.sort(scores_in.astype(common))
    scores_out = scores_out.astype(common)
    below = jnp.searchsorted(sorted_in, scores_out, side="left")  # #in <  s_j
    below_or_tied = jnp.searchsorted(sorted_in, scores_out, side="right")  # #in <= s_j
    float_dtype = jnp.result_type(float) if not jnp.issubdtype(common, jnp.floating) else common
    per_out = (below + below_or_tied).astype(float_dtype) / (2 * scores_in.shape[0])
    unordered = jnp.any(jnp.isnan(sorted_in)) | jnp.any(jnp.isnan(scores_out))
    return jnp.where(unordered, jnp.nan, jnp.mean(per_out))

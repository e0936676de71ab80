"""The laplace-torch side of ``laplace.py``: the same fits and GLM predictives on the same weights and data.

Runs as a child under an interpreter with torch and laplace-torch
(``laplace.py --torch-python``), so the project's environment stays free of
PyTorch; it imports no JAX. Each fit follows an untimed warm-up fit in this
process (PyTorch has no compile), and reports the test NLL of its GLM probit
predictive, then tunes one prior precision by marginal likelihood.

Usage (internal)::

    python benchmarks/_laplace_torch.py DATA.npz CONFIGS_JSON GLM_CONFIGS_JSON
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import sys
import time

import numpy as np
import torch
from _common import emit, peak_rss_mb
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

# This folder holds the benchmark laplace.py, which would shadow laplace-torch's package ``laplace``.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != HERE]


def measure(data_path: str, configs: list[list[str]], glm_configs: list[list[str]]) -> dict:
    """Fit seconds, GLM seconds, test NLL and accuracy, tuned precision per ``[hessian, subset]``.

    ``{"skipped": reason}`` if laplace-torch does not import here. The GLM
    predictive runs in batches of 256 inputs: all points at once exhaust the
    memory for KFAC over all weights (see benchmarks/README.md).
    """
    try:
        from laplace import Laplace
    except Exception as error:  # noqa: BLE001  (any failure to import is a skip, reported)
        return {"skipped": f"laplace-torch not importable: {type(error).__name__}: {error}"}
    d = np.load(data_path)
    torch.manual_seed(0)
    kernels = [d[f"kernel{i}"] for i in range(sum(name.startswith("kernel") for name in d.files))]
    layers = []
    for k in kernels:
        layers += [nn.Linear(*k.shape), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])  # the MLP of the JAX weights: Linear, ReLU, ..., Linear
    with torch.no_grad():
        for i, layer in enumerate(model[::2]):
            layer.weight.copy_(torch.from_numpy(kernels[i].T.copy()))
            layer.bias.copy_(torch.from_numpy(d[f"bias{i}"]))
    x_train, y_train = torch.from_numpy(d["x_train"]), torch.from_numpy(d["y_train"]).long()
    x_test, y_test = torch.from_numpy(d["x_test"]), torch.from_numpy(d["y_test"]).long()
    x_all = torch.from_numpy(d["x_all"])
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=128)
    out = {"version": importlib.metadata.version("laplace-torch"), "torch": torch.__version__,
           "threads": torch.get_num_threads()}
    # Untimed warm-up: the first fit in a process pays one-time set-up costs.
    warm_up = Laplace(model, "classification", subset_of_weights="all", hessian_structure="kron")
    warm_up.fit(DataLoader(TensorDataset(x_train[:128], y_train[:128]), batch_size=128))

    def test_probs(la):
        with torch.no_grad():
            return torch.cat([la(b, pred_type="glm", link_approx="probit") for b in torch.split(x_test, 256)])

    def nll(probs):
        return float(-torch.log(probs[torch.arange(len(y_test)), y_test]).mean())

    for hessian, subset in configs:
        name = f"{hessian}/{subset}"
        structure = {"diag": "diag", "kfac": "kron"}[hessian]
        start = time.perf_counter()
        la = Laplace(model, "classification", subset_of_weights=subset, hessian_structure=structure)
        la.fit(loader)
        fit_s = time.perf_counter() - start
        probs = test_probs(la)
        out[name] = {"fit_s": fit_s, "test_nll": nll(probs),
                     "test_accuracy": float((probs.argmax(1) == y_test).float().mean()),
                     "backend": type(la.backend).__name__}
        if [hessian, subset] in glm_configs:
            start = time.perf_counter()
            with torch.no_grad():
                for batch in torch.split(x_all, 256):
                    la(batch, pred_type="glm", link_approx="probit")
            out[name]["glm_s"] = time.perf_counter() - start
        la.optimize_prior_precision(method="marglik", pred_type="glm", link_approx="probit")
        out[name]["tuned_prior_precision"] = float(la.prior_precision.ravel()[0])
        out[name]["tuned_test_nll"] = nll(test_probs(la))
    out["peak_rss_mb"] = peak_rss_mb()
    return out


if __name__ == "__main__":
    emit(measure(sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])))

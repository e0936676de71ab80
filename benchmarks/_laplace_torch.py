"""The laplace-torch side of ``laplace.py``: the same fits and GLM predictives on the same weights and data.

Runs as a child under an interpreter with torch and laplace-torch
(``laplace.py --torch-python``), so the project's environment stays free of
PyTorch; it imports no JAX. Each fit follows an untimed warm-up fit in this
process (PyTorch has no compile), and reports the test NLL of its GLM probit
predictive, then tunes one prior precision by marginal likelihood. It emits
what it has measured after each stage, so a parent that stops it at a
timeout keeps the stages that finished (``ready_s``: seconds from start to
the first timed fit).

Usage (internal)::

    python benchmarks/_laplace_torch.py DATA.npz CONFIGS_JSON GLM_CONFIGS_JSON
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import sys
import time

START = time.perf_counter()

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
    model, to_torch = network(d)
    x_train, y_train = to_torch(d["x_train"]), torch.from_numpy(d["y_train"]).long()
    x_test, y_test = to_torch(d["x_test"]), torch.from_numpy(d["y_test"]).long()
    x_all = to_torch(d["x_all"])
    with torch.no_grad():
        logit_diff = float((model(x_test[:8]) - torch.from_numpy(d["logits"])).abs().max())
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=128)
    out = {"version": importlib.metadata.version("laplace-torch"), "torch": torch.__version__,
           "threads": torch.get_num_threads(), "max_abs_logit_diff": logit_diff}
    # Untimed warm-up: the first fit in a process pays one-time set-up costs.
    warm_up = Laplace(model, "classification", subset_of_weights="all", hessian_structure="kron")
    warm_up.fit(DataLoader(TensorDataset(x_train[:128], y_train[:128]), batch_size=128))
    out["ready_s"] = time.perf_counter() - START
    emit({**out, "peak_rss_mb": peak_rss_mb()})

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
        out[name] = {"fit_s": time.perf_counter() - start, "backend": type(la.backend).__name__}
        emit({**out, "peak_rss_mb": peak_rss_mb()})
        probs = test_probs(la)
        out[name].update(test_nll=nll(probs), test_accuracy=float((probs.argmax(1) == y_test).float().mean()))
        if [hessian, subset] in glm_configs:
            start = time.perf_counter()
            with torch.no_grad():
                for batch in torch.split(x_all, 256):
                    la(batch, pred_type="glm", link_approx="probit")
            out[name]["glm_s"] = time.perf_counter() - start
        emit({**out, "peak_rss_mb": peak_rss_mb()})
        la.optimize_prior_precision(method="marglik", pred_type="glm", link_approx="probit")
        out[name]["tuned_prior_precision"] = float(la.prior_precision.ravel()[0])
        out[name]["tuned_test_nll"] = nll(test_probs(la))
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def network(d):
    """``(torch module, inputs -> tensor)`` of ``laplace.py``'s network on its JAX weights ``w:<path>``.

    ``"mlp ..."``: Linear and ReLU layers on flattened inputs (kernels
    transposed). ``"cnn"``: Fortuin et al.'s network, ``Conv2d`` (3x3,
    padding 1 = flax's SAME; kernels HWIO to OIHW), ReLU and 2x2 max-pooling
    twice, then the head, whose rows are permuted from flax's flattening
    order (H, W, C) to torch's (C, H, W); images NHWC to NCHW.
    """
    w = {k[2:]: torch.from_numpy(np.ascontiguousarray(d[k])) for k in d.files if k.startswith("w:")}

    def linear(name):
        layer = nn.Linear(*w[f"{name}/kernel"].shape)
        layer.weight.data.copy_(w[f"{name}/kernel"].T)
        layer.bias.data.copy_(w[f"{name}/bias"])
        return layer

    if str(d["network"]) != "cnn":
        dense = sorted((k.split("/")[0] for k in w if k.endswith("/kernel")), key=lambda k: int(k.split("_")[1]))
        layers = []
        for name in dense:
            layers += [linear(name), nn.ReLU()]
        return nn.Sequential(*layers[:-1]), torch.from_numpy

    def conv(name):
        kernel = w[f"{name}/kernel"]  # [3, 3, in, out]
        layer = nn.Conv2d(kernel.shape[2], kernel.shape[3], kernel.shape[0], padding=kernel.shape[0] // 2)
        layer.weight.data.copy_(kernel.permute(3, 2, 0, 1))
        layer.bias.data.copy_(w[f"{name}/bias"])
        return layer

    head = linear("Dense_0")
    channels = w["Conv_1/kernel"].shape[3]
    side = int(round((head.in_features // channels) ** 0.5))
    head.weight.data.copy_(head.weight.data.view(-1, side, side, channels).permute(0, 3, 1, 2).reshape(
        head.out_features, -1))
    model = nn.Sequential(conv("Conv_0"), nn.ReLU(), nn.MaxPool2d(2), conv("Conv_1"), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), head)
    return model, lambda x: torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


if __name__ == "__main__":
    emit(measure(sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])))

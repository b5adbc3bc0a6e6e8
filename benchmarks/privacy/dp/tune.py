"""Hyper-parameter exploration for `dp_train`, on a tuning split that never touches the benchmark's test rows.

Tuning split: the benchmark's 1257 training rows (digits, stratified 70/30, seed 0) split again 900 / 357
(stratified, seed 1); the 540 test rows of `run.py` are not loaded. Tuning on private rows has a privacy
cost of its own that no accountant here charges (Papernot & Steinke 2022 bound it); the results file
says so. One configuration per call (a JSON object of `dp_train` keyword arguments, plus `act` relu|tanh,
`norm` (GroupNorm(8, 256) after each hidden linear layer), `public` (pre-train on the public MNIST rows
of `public_data.py`, `public_epochs` passes) and `multiplicity` (augmentation multiplicity,
De et al. 2022: K random 1-pixel shifts of each 8x8 image, per-sample gradient averaged over them before
clipping)), appended to parts/tune.jsonl:

    nice -n 10 .venv/bin/python benchmarks/privacy/dp/tune.py '{"epsilon": 3, "lr": 1e-2}'
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

PARTS = Path(__file__).resolve().parent / "parts"


def tuning_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    xtr, _, ytr, _ = train_test_split(x.astype(np.float32), y, test_size=0.3, random_state=0, stratify=y)
    a, b, ya, yb = train_test_split(xtr, ytr, test_size=357, random_state=1, stratify=ytr)
    return a, ya.astype(np.int64), b, yb.astype(np.int64)


def mlp(act: str = "relu", norm: bool = False) -> Any:
    import torch

    torch.manual_seed(0)
    activation = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[act]
    layers: list[Any] = [torch.nn.Linear(64, 256)]
    if norm:
        layers.append(torch.nn.GroupNorm(8, 256))
    layers += [activation(), torch.nn.Linear(256, 256)]
    if norm:
        layers.append(torch.nn.GroupNorm(8, 256))
    layers += [activation(), torch.nn.Linear(256, 10)]
    return torch.nn.Sequential(*layers)


def shifted(xb: Any, k: int, gen: Any) -> Any:
    """``(B, k, 64)``: each row and k - 1 copies shifted by up to one pixel (background -1 fills in)."""
    import torch

    img = torch.nn.functional.pad(xb.reshape(-1, 8, 8), (1, 1, 1, 1), value=-1.0)
    outs = [xb]
    for _ in range(k - 1):
        dx = torch.randint(0, 3, (len(xb),), generator=gen)
        dy = torch.randint(0, 3, (len(xb),), generator=gen)
        crop = torch.stack([img[i, dy[i] : dy[i] + 8, dx[i] : dx[i] + 8] for i in range(len(xb))])
        outs.append(crop.reshape(-1, 64))
    return torch.stack(outs, 1)


def with_multiplicity(cfg: dict[str, Any], xtr: np.ndarray, ytr: np.ndarray, seed: int) -> tuple[Any, float]:
    """DP-SGD (Opacus, PRV, Poisson) with augmentation multiplicity; the same recipe as `dp_train` otherwise."""
    import torch
    from opacus import PrivacyEngine

    k = int(cfg["multiplicity"])
    epochs, batch, lr = cfg.get("epochs", 60), cfg.get("batch_size", 256), cfg.get("lr", 1e-2)
    decay = cfg.get("ema", 0.97)
    x = xtr / 8.0 - 1.0  # the public pixel range 0-16 to [-1, 1]
    torch.manual_seed(seed)
    net = mlp(cfg.get("act", "relu"), cfg.get("norm", False))
    gen = torch.Generator().manual_seed(seed)
    data = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(ytr))
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, generator=gen)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = PrivacyEngine(accountant="prv")
        private, dp_opt, dp_loader = engine.make_private_with_epsilon(
            module=net,
            optimizer=opt,
            data_loader=loader,
            target_epsilon=cfg["epsilon"],
            target_delta=1e-5,
            epochs=epochs,
            max_grad_norm=cfg.get("clip", 1.0),
            poisson_sampling=True,
            noise_generator=torch.Generator().manual_seed(seed + 1),
        )
        params = list(net.parameters())
        avg = [p.detach().clone() for p in params]
        steps = 0
        for _ in range(epochs):
            for xb, yb in dp_loader:
                if len(xb) == 0:
                    continue
                dp_opt.zero_grad()
                logits = private(shifted(xb, k, gen))  # Opacus sums per-sample grads over the k axis
                torch.nn.functional.cross_entropy(logits.reshape(-1, 10), yb.repeat_interleave(k)).backward()
                dp_opt.step()
                steps += 1
                d = min(decay, (1 + steps) / (10 + steps))
                with torch.no_grad():
                    for a, p in zip(avg, params, strict=True):
                        a.mul_(d).add_(p.detach(), alpha=1 - d)
        spent = float(engine.get_epsilon(1e-5))
    with torch.no_grad():
        for a, p in zip(avg, params, strict=True):
            p.copy_(a)
    rescale = _rescale()
    return torch.nn.Sequential(rescale, private._module.eval()), spent


def _rescale() -> Any:
    import torch

    class Rescale(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            return x / 8.0 - 1.0

    return Rescale()


def public_data(epochs: int = 10) -> Any:
    """The public MNIST rows in the digits format (`public_data.py` writes them)."""
    import public_data as pd  # the sibling module

    return pd.load(epochs)


def main() -> None:
    import torch

    from mlsecops.harden.dp import dp_train

    torch.set_num_threads(1)
    text = sys.argv[1]
    cfg = json.loads(text)
    seeds = cfg.pop("seeds", [0])
    xtr, ytr, xva, yva = tuning_split()
    accs, spent = [], 0.0
    start = time.perf_counter()
    for seed in seeds:
        if cfg.get("multiplicity", 1) > 1:
            module, spent = with_multiplicity(cfg, xtr, ytr, seed)
        else:
            kw = {k: v for k, v in cfg.items() if k not in ("act", "norm", "multiplicity", "public")}
            if cfg.get("public"):
                kw["public_data"] = public_data(cfg.get("public_epochs", 10))
                kw.pop("public_epochs", None)
            net = mlp(cfg.get("act", "relu"), cfg.get("norm", False))
            r = dp_train(net, xtr, ytr, delta=1e-5, input_range=(0.0, 16.0), seed=seed, **kw)
            module, spent = r.module, r.epsilon
        with torch.no_grad():
            accs.append(float((module(torch.from_numpy(xva)).argmax(1).numpy() == yva).mean()))
    row = {
        "config": json.loads(text),
        "val_accuracy": float(np.mean(accs)),
        "per_seed": accs,
        "spent_epsilon": spent,
    }
    row["seconds"] = time.perf_counter() - start
    PARTS.mkdir(exist_ok=True)
    with (PARTS / "tune.jsonl").open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    print(json.dumps(row))


if __name__ == "__main__":
    main()

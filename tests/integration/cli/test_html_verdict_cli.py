"""The HTML verdict of an ``assess`` command says whether its findings reach ``--fail-on`` (in-process)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tests._deps import require

Cli = Callable[..., Any]
torch = require("torch", "torch")


def test_html_verdict_reconciles_fail_on_with_the_findings(cli: Cli, tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    from mlsecops.models import TorchModel

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(120):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(d.target)).backward()
        opt.step()
    model = TorchModel(net.eval(), input_shape=(64,)).save(tmp_path / "mlp.pt")
    data = tmp_path / "digits.npz"
    np.savez(data, X=x[:100], y=d.target[:100])
    args = ("assess", "robustness", "-m", str(model), "-d", str(data), "--attack", "fgsm", "--eps", "0.3")
    verdicts = {}
    for level, code in (("critical", 0), ("medium", 1)):
        out = tmp_path / f"{level}.html"
        r = cli(*args, "--fail-on", level, "-o", str(out))
        assert r.code == code, r.err
        banner = re.search(r'<div class="verdict (\w+)"><b>([^<]+):</b> ([^<]+)</div>', out.read_text())
        assert banner is not None
        verdicts[level] = banner.groups()
    # FGSM at 0.3 fools this model badly (high findings): below critical the run passes, and says why
    assert verdicts["critical"][:2] == ("warn", "Passes")
    assert (
        "high" in verdicts["critical"][2] and "below the fail-on level (critical)" in verdicts["critical"][2]
    )
    assert verdicts["medium"][:2] == ("bad", "Fails")
    assert "at or above the fail-on level (medium)" in verdicts["medium"][2]

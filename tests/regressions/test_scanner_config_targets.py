"""Hydra / OmegaConf ``_target_`` in model configurations: ``instantiate`` imports and calls the named
callable. CVE-2025-23304 (NVIDIA NeMo): a ``_target_`` in the model_config.yaml of a ``.nemo`` archive.
https://nvd.nist.gov/vuln/detail/CVE-2025-23304"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

from mlsecops.supplychain.scanner import Verdict, scan_file

_EVIL_YAML = b"""model:
  encoder:
    _target_: nemo.collections.asr.modules.ConformerEncoder
    d_model: 256
  hook:
    _target_: subprocess.run
    args: ["id"]
"""
_BENIGN_YAML = b"""model:
  encoder:
    _target_: nemo.collections.asr.modules.ConformerEncoder
    d_model: 256
  optim:
    _target_: torch.optim.AdamW
    lr: 0.001
"""


def _nemo(config: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in (("model_config.yaml", config), ("model_weights.ckpt", b"\x00" * 64)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_dangerous_target_found_in_yaml_json_and_archives(tmp_path: Path) -> None:
    cases = {
        "config.yaml": _EVIL_YAML,
        "model.nemo": _nemo(_EVIL_YAML),
        "config.json": json.dumps({"hook": {"_target_": "builtins.exec", "_args_": ["print(1)"]}}).encode(),
    }
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("conf/hydra.json", json.dumps({"_target_": "os.system", "command": "id"}))
    cases["bundle.zip"] = zbuf.getvalue()
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        result = scan_file(tmp_path / name, sha256=False)
        assert result.verdict is Verdict.MALICIOUS, (name, [h.title for h in result.hits])
        assert any(h.kind == "config" and h.callable for h in result.hits), name


def test_ordinary_targets_are_not_flagged(tmp_path: Path) -> None:
    for name, data in (("config.yaml", _BENIGN_YAML), ("model.nemo", _nemo(_BENIGN_YAML))):
        (tmp_path / name).write_bytes(data)
        result = scan_file(tmp_path / name, sha256=False)
        assert result.verdict is Verdict.SAFE, (name, [h.title for h in result.hits])


def test_config_switching_on_trust_remote_code_is_suspicious(tmp_path: Path) -> None:
    # NeMo passes hf_data_cfg from model_config.yaml to datasets.load_dataset (NVIDIA-NeMo/Speech#15598).
    cfg = b"train_ds:\n  hf_data_cfg:\n    path: someone/dataset\n    trust_remote_code: true\n"
    (tmp_path / "model.nemo").write_bytes(_nemo(cfg))
    result = scan_file(tmp_path / "model.nemo", sha256=False)
    assert result.verdict is Verdict.SUSPICIOUS
    assert any("trust_remote_code" in h.title for h in result.hits)
    (tmp_path / "off.yaml").write_bytes(cfg.replace(b"true", b"false"))
    assert scan_file(tmp_path / "off.yaml", sha256=False).verdict is Verdict.SAFE

"""What ``load_model`` says about files that pass the scan but hold no model, and about skops archives."""

from __future__ import annotations

import importlib.util
import json
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mlsecops.core.errors import InputError, VerificationError
from mlsecops.models import ModelError, load_model


def test_arrays_and_weights_are_named_not_loaded_as_models(tmp_path: Path) -> None:
    npy = tmp_path / "x.pkl"  # the suffix admits it; the content decides what it is
    with npy.open("wb") as fh:
        np.save(fh, np.arange(4.0))
    with pytest.raises(ModelError, match="holds a ndarray, not a model"):
        load_model(npy, input_shape=(4,))
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    st = tmp_path / "w.pt"
    st.write_bytes(struct.pack("<Q", len(header)) + header + np.ones(2, np.float32).tobytes())
    with pytest.raises(ModelError, match="state_dict"):
        load_model(st, input_shape=(4,))


def test_a_plain_data_pickle_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "d.pkl"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelError, match="holds a dict, not a model"):
        load_model(path)


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def test_skops_archives_load_only_through_the_scanner(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile_pickle = b"\x80\x02cos\nsystem\nX" + len(f"touch {marker}").to_bytes(4, "little")
    hostile_pickle += f"touch {marker}".encode() + b"\x85R."
    hostile = _zip(tmp_path / "hostile.skops", {"schema.json": b"{}", "a.pkl": hostile_pickle})
    with pytest.raises(VerificationError, match="refusing to load"):
        load_model(hostile)
    assert not marker.exists()
    not_skops = _zip(tmp_path / "plain.skops", {"notes.txt": b"hello"})
    with pytest.raises(InputError, match=r"no skops schema\.json"):
        load_model(not_skops)
    benign = _zip(tmp_path / "benign.skops", {"schema.json": b"{}"})
    if importlib.util.find_spec("skops") is None:  # the message names what to install
        with pytest.raises(InputError, match="pip install skops"):
            load_model(benign)
    else:  # skops itself rejects an empty schema
        with pytest.raises(InputError, match="could not be loaded"):
            load_model(benign)

"""Regressions for hostile inputs that hung, exhausted memory or crashed instead of a clear error.

Issue 11 items 9, 10, 11, 15 and 18 (red-team round 3). Each test plants the input an attacker would
write, drives the real entry point (the CLI in-process where one exists) under a deadline, and asserts
a one-line refusal; benign twins beside them assert that ordinary files still work.

- 11.9: a CSV whose every row digest is 0 made the duplicate sampler's halving loop spin forever.
- 11.10: ``.npz`` members not named ``*.npy`` slipped past the bomb guard (NumPy inflates them too),
  and the robustness loader had no guard at all.
- 11.11: a few hundred bytes of YAML aliases (``&a [...]``, ``&b [*a, *a, ...]``) expanded into
  billions of nodes in pipeline options and model cards.
- 11.15: a CSV row without a line break was held whole in memory.
- 11.18: object-dtype arrays (pickles), malformed model cards, options nested 5,000 deep, signature
  bundles nested 100,000 deep, and a policy file that is ``/dev/zero`` or a FIFO.
"""

from __future__ import annotations

import io
import json
import os
import signal
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlsecops.core.errors import InputError, VerificationError
from mlsecops.core.inputs import MAX_NESTING_DEPTH, parse_json, parse_yaml

# --------------------------------------------------------------------------------------------- helpers


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``.

    SIGALRM interrupts blocking system calls too (an ``open`` of a FIFO, a ``read`` of ``/dev/zero``).
    """

    def _expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s: the input was not refused in time")

    old = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _refused(result: Any, *needles: str) -> None:
    """A one-line exit-2 refusal naming the problem; never an internal error or a traceback."""
    assert result.code == 2, (result.code, result.out, result.err)
    text = result.err.strip()
    assert "internal error" not in text and "Traceback" not in text, text
    assert len(text.splitlines()) == 1, text
    for needle in needles:
        assert needle in text, text


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The 657-byte kind: each level is a list of ``width`` aliases to the level below."""
    names = "abcdefghijklmnop"
    lines = [f"{names[0]}: &{names[0]} [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"{names[i]}: &{names[i]} [" + ", ".join([f"*{names[i - 1]}"] * width) + "]")
    return "{" + ", ".join(lines) + "}"  # flow style, so it fits on one line as a stage's options


# ------------------------------------------------------------------------------- 11.11: YAML bombs


def test_alias_bomb_text_is_small_and_refused_fast() -> None:
    bomb = alias_bomb()
    assert len(bomb) < 700  # the size check alone cannot catch it
    with deadline(5), pytest.raises(InputError, match="aliases expand to more than"):
        parse_yaml(bomb)


def test_alias_bomb_in_pipeline_options_is_refused(cli: Callable[..., Any], tmp_path: Path) -> None:
    env = {"MLSECOPS_HOME": str(tmp_path / ".mlsecops")}
    assert cli("init", env=env).code == 0
    (tmp_path / "m.pkl").write_bytes(b"\x80\x04K\x01.")
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        "stages:\n  - name: scan\n    check: artifact.scan\n    paths: [m.pkl]\n"
        f"    options: {alias_bomb()}\n"
    )
    with deadline(20):
        result = cli("run", str(pipeline), env=env)
    _refused(result, "alias")


def test_alias_bomb_in_a_model_card_is_refused(cli: Callable[..., Any], tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"\x00" * 64)
    card = tmp_path / "card.yaml"
    card.write_text(alias_bomb())
    with deadline(30):
        result = cli("bom", str(tmp_path / "model.bin"), "--card", str(card))
    _refused(result, "alias")


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(InputError, match="recursive alias"):
        parse_yaml("a: &x [1, *x]\n")


def test_many_small_aliases_are_refused() -> None:
    text = "a: &x 1\nb: [" + ", ".join(["*x"] * 101) + "]\n"
    with pytest.raises(InputError, match="more than 100 aliases"):
        parse_yaml(text)


def test_yaml_with_a_few_anchors_still_loads(tmp_path: Path) -> None:
    from mlsecops.pipeline import load_pipeline

    (tmp_path / "m.pkl").write_bytes(b"\x80\x04K\x01.")
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        "stages:\n"
        "  - name: scan\n    check: artifact.scan\n    paths: [m.pkl]\n"
        "    options: &opts {max_seconds: 30}\n"
        "  - name: scan2\n    check: artifact.scan\n    paths: [m.pkl]\n    options: *opts\n"
        "  - name: scan3\n    check: artifact.scan\n    paths: [m.pkl]\n    options: {<<: *opts}\n"
    )
    loaded = load_pipeline(pipeline)
    assert [s.options for s in loaded.stages] == [{"max_seconds": 30}] * 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("{b: !!binary aGVsbG8=}", "tag tag:yaml.org,2002:binary is not allowed"),
        ("{s: !!set {a, b}}", "tag tag:yaml.org,2002:set is not allowed"),
        ("{t: !!timestamp 2024-01-01}", "tag tag:yaml.org,2002:timestamp is not allowed"),
        ("{1: 2}", "keys must be strings"),
        ("{a: {null: 2}}", "keys must be strings"),
    ],
)
def test_options_outside_the_json_model_are_config_errors(
    cli: Callable[..., Any], tmp_path: Path, options: str, message: str
) -> None:
    # They used to pass loading and crash the run with an internal ValidationError.
    env = {"MLSECOPS_HOME": str(tmp_path / ".mlsecops")}
    assert cli("init", env=env).code == 0
    (tmp_path / "m.pkl").write_bytes(b"\x80\x04K\x01.")
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        f"stages:\n  - name: scan\n    check: artifact.scan\n    paths: [m.pkl]\n    options: {options}\n"
    )
    _refused(cli("run", str(pipeline), env=env), message)


def test_dates_in_yaml_stay_strings() -> None:
    assert parse_yaml("when: 2024-01-01\nat: 2024-01-01 10:00:00\n") == {
        "when": "2024-01-01",
        "at": "2024-01-01 10:00:00",
    }


# ------------------------------------------------------------------- 11.18: nesting 5,000 / 100,000


@pytest.mark.parametrize("style", ["flow", "block"])
def test_options_nested_5000_deep_are_refused(cli: Callable[..., Any], tmp_path: Path, style: str) -> None:
    env = {"MLSECOPS_HOME": str(tmp_path / ".mlsecops")}
    assert cli("init", env=env).code == 0
    (tmp_path / "m.pkl").write_bytes(b"\x80\x04K\x01.")
    if style == "flow":
        deep = "{a: " * 5000 + "1" + "}" * 5000
        options = f"    options: {deep}\n"
    else:
        # block style indents quadratically: 700 levels already take 490 kB of the 1 MiB limit
        options = "    options:\n" + "".join("      " + "  " * i + "a:\n" for i in range(700))
        options += "      " + "  " * 700 + "b: 1\n"
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text("stages:\n  - name: scan\n    check: artifact.scan\n    paths: [m.pkl]\n" + options)
    with deadline(20):
        result = cli("run", str(pipeline), env=env)
    _refused(result, "nests deeper than")


def test_json_nested_100000_deep_is_an_input_error() -> None:
    with deadline(5), pytest.raises(InputError, match="nests deeper than"):
        parse_json("[" * 100_000 + "]" * 100_000)
    # brackets inside strings do not count; a document at the limit parses
    assert parse_json('{"a": "[[[[[[[[[[", "b": "\\"[["}') == {"a": "[[[[[[[[[[", "b": '"[['}
    at_limit = "[" * MAX_NESTING_DEPTH + "]" * MAX_NESTING_DEPTH
    assert parse_json(at_limit) is not None


def test_signature_bundle_nested_100000_deep_is_a_clear_failure(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    from mlsecops.supplychain import signing

    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"\x01" * 100)
    pub, _ = signing.create_keypair(tmp_path / "k.key")
    bundle = tmp_path / "deep.sig"
    bundle.write_text('{"mediaType": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(VerificationError, match="nests deeper than"):
        signing.read_bundle(bundle.read_bytes())
    with deadline(30):
        result = cli("verify", str(model), "--key", str(pub), "--signature", str(bundle))
    assert result.code in (1, 2), (result.code, result.err)
    assert "nests deeper than" in result.out + result.err
    assert "internal error" not in result.err and "Recursion" not in result.out + result.err


def test_deep_baseline_profile_is_refused(cli: Callable[..., Any], tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a\n1\n2\n")
    (tmp_path / "base.json").write_text('{"schema_id": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with deadline(20):
        result = cli("data", "check", str(tmp_path / "d.csv"), "-b", str(tmp_path / "base.json"))
    _refused(result, "nests deeper than")


# ------------------------------------------------------------- 11.18: /dev/zero and FIFOs as inputs


def _simple_pipeline(tmp_path: Path) -> Path:
    (tmp_path / "m.pkl").write_bytes(b"\x80\x04K\x01.")
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text("stages:\n  - name: scan\n    check: artifact.scan\n    paths: [m.pkl]\n")
    return pipeline


@pytest.mark.parametrize("kind", ["dev-zero", "fifo"])
def test_policy_file_that_is_not_a_regular_file_is_refused_without_hanging(
    cli: Callable[..., Any], tmp_path: Path, kind: str
) -> None:
    env = {"MLSECOPS_HOME": str(tmp_path / ".mlsecops")}
    assert cli("init", env=env).code == 0
    pipeline = _simple_pipeline(tmp_path)
    if kind == "fifo":
        policy = tmp_path / "policy.yaml"
        os.mkfifo(policy)  # no writer: a blocking open would wait forever
    else:
        policy = Path("/dev/zero")  # endless: a read without a cap would fill memory
    with deadline(20):
        result = cli("run", str(pipeline), "--policy", str(policy), env=env)
    _refused(result, "not a regular file")


def test_inline_policy_reference_and_pipeline_fifo_are_refused(tmp_path: Path) -> None:
    from mlsecops.pipeline import load_pipeline

    pipeline = _simple_pipeline(tmp_path)
    pipeline.write_text(pipeline.read_text() + "policy: /dev/zero\n")
    with deadline(10), pytest.raises(InputError, match="not a regular file"):
        load_pipeline(pipeline)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with deadline(10), pytest.raises(InputError, match="not a regular file"):
        load_pipeline(fifo)


@pytest.mark.parametrize("card", ["/dev/zero", "fifo"])
def test_model_card_that_is_not_a_regular_file_is_refused(tmp_path: Path, card: str) -> None:
    from mlsecops.supplychain.bom import build_bom

    (tmp_path / "model.bin").write_bytes(b"\x00" * 64)
    path = Path(card)
    if card == "fifo":
        path = tmp_path / "card.yaml"
        os.mkfifo(path)
    with deadline(20), pytest.raises(InputError, match="not a regular file"):
        build_bom(tmp_path / "model.bin", card=path)


def test_data_file_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    from mlsecops.data import load_table

    fifo = tmp_path / "d.csv"
    os.mkfifo(fifo)
    with deadline(10), pytest.raises(InputError, match="not a regular file"):
        load_table(fifo)


# ------------------------------------------------------------------- 11.18 / 12.9: model cards


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ("approch: supervised\n", "unknown key(s) ['approch']; allowed: approach, architecture"),
        ("considerations: {user: [a]}\n", "unknown key(s) ['user']"),
        ("metrics: [1, 2]\n", "metrics must be a mapping"),
        ("metrics: {1: 0.5}\n", "metrics must be a mapping"),
        ("task: {a: b}\n", "task must be a string"),
        ("considerations: {ethical_considerations: [{mitigation: x}]}\n", "ethical consideration"),
        ("datasets: {a: 1}\n", "datasets must be a string or a list"),
        ("approach: [1]\n", "approach must be a string"),
        ("a: [\n", "not valid YAML"),
        ("- a list\n", "must be a mapping"),
    ],
)
def test_malformed_model_cards_are_clear_errors(
    cli: Callable[..., Any], tmp_path: Path, card: str, message: str
) -> None:
    (tmp_path / "model.bin").write_bytes(b"\x00" * 64)
    (tmp_path / "card.yaml").write_text(card)
    result = cli("bom", str(tmp_path / "model.bin"), "--card", str(tmp_path / "card.yaml"))
    _refused(result, message)


def test_model_card_as_json_with_every_key_is_accepted(tmp_path: Path) -> None:
    from mlsecops.supplychain.bom import CARD_KEYS, build_bom

    card = {
        "approach": "supervised",
        "task": "classification",
        "architecture_family": "cnn",
        "architecture": "2-layer",
        "datasets": ["digits"],
        "description": "d",
        "inputs": ["image"],
        "outputs": ["label"],
        "metrics": {"accuracy": 0.9},
        "considerations": {"users": ["analysts"], "ethical_considerations": ["misuse", {"name": "x"}]},
    }
    assert set(card) == set(CARD_KEYS)
    (tmp_path / "model.bin").write_bytes(b"\x00" * 64)
    (tmp_path / "card.json").write_text(json.dumps(card))
    bom = build_bom(tmp_path / "model.bin", card=tmp_path / "card.json")
    assert bom["metadata"]["component"]["modelCard"]["modelParameters"]["task"] == "classification"


# -------------------------------------------------------------- 11.9: a CSV whose row digest is 0

# The profile's row digest is FNV-style: h = offset; per column h = (h ^ bits) * prime; h ^= h >> 29.
# With one numeric column whose float64 bits equal the offset basis, h ^ bits = 0, so the digest is 0.
_FNV_OFFSET = 1469598103934665603
ZERO_DIGEST_VALUE = float(np.array([_FNV_OFFSET], dtype=np.uint64).view(np.float64)[0])


def _zero_digest_csv(path: Path, rows: int) -> Path:
    path.write_text("a\n" + f"{ZERO_DIGEST_VALUE!r}\n" * rows)
    return path


def test_the_planted_rows_really_hash_to_zero() -> None:
    from mlsecops.data import ProfileBuilder

    builder = ProfileBuilder()
    builder.update({"a": np.full(10, ZERO_DIGEST_VALUE)})
    # Guard for this test file: if the digest changes, re-derive the planted value above.
    assert set(builder._hashes.tolist()) == {0}


@pytest.mark.parametrize("command", ["profile", "check", "register"])
def test_zero_digest_csv_finishes(cli: Callable[..., Any], tmp_path: Path, command: str) -> None:
    from mlsecops.data._profile import _HASH_CAP

    data = _zero_digest_csv(tmp_path / "zero.csv", _HASH_CAP + 100_000)  # ~14 MB, as reported
    assert data.stat().st_size > 13_000_000
    env = {"MLSECOPS_HOME": str(tmp_path / ".mlsecops")}
    with deadline(120):
        if command == "profile":
            result = cli("data", "profile", str(data), "-o", "base.json", "--format", "json")
            assert result.code == 0, result.err
            profile = json.loads((tmp_path / "base.json").read_text())
            assert profile["rows"] == _HASH_CAP + 100_000
            assert profile["duplicate_rows"] == _HASH_CAP + 100_000 - 1  # all one row, estimated exactly
        elif command == "check":
            (tmp_path / "small.csv").write_text("a\n" + "\n".join(str(i) for i in range(100)) + "\n")
            assert cli("data", "profile", "small.csv", "-o", "base.json").code == 0
            result = cli("data", "check", str(data), "-b", "base.json", "--format", "json")
            assert result.code == 1, result.err  # ran and found: duplicates, range, shift
        else:
            assert cli("init", env=env).code == 0
            result = cli("data", "register", str(data), "--name", "zero", "--format", "json", env=env)
            assert result.code == 0, result.err


def test_duplicate_estimate_stays_bounded_for_distinct_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlsecops.data import _profile

    monkeypatch.setattr(_profile, "_HASH_CAP", 1_000)
    rng = np.random.default_rng(0)
    a = rng.random(40_000)
    a[36_000:] = a[:4_000]  # 4,000 duplicates (10%)
    builder = _profile.ProfileBuilder()
    for start in range(0, a.size, 3_000):
        builder.update({"a": a[start : start + 3_000]})
        assert builder._hashes.size <= 1_000
    assert 2_000 < builder.result().duplicate_rows < 6_000


# ------------------------------------------------------------------- 11.10: .npz member bombs


def _npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


@pytest.fixture
def small_npz_limits(monkeypatch: pytest.MonkeyPatch) -> int:
    """Limits of 32 MiB instead of 4 GiB, so a bomb of the reported kind is built in a second."""
    from mlsecops.data import _readers

    limit = 32 << 20
    monkeypatch.setattr(_readers, "MAX_ARRAY_BYTES", limit)
    monkeypatch.setattr(_readers, "MAX_NPZ_BYTES", limit)
    return limit


def _suffixless_bomb(path: Path, limit: int) -> Path:
    """A deflated archive whose features member is named ``X`` (no ``.npy``): NumPy inflates it."""
    inflated = 3 * limit
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("y.npy", _npy_header((4,), "<i8") + bytes(32))
        info = zipfile.ZipInfo("X")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as fh:
            fh.write(_npy_header((inflated // 8 // 4, 4)))
            block = bytes(1 << 20)
            for _ in range(inflated >> 20):
                fh.write(block)
    assert path.stat().st_size < limit // 50  # tiny on disk
    with np.load(path) as npz:
        assert "X" in npz.files  # numpy would inflate this member
    return path


def test_suffixless_npz_member_bomb_is_refused_in_every_loader(
    cli: Callable[..., Any], tmp_path: Path, small_npz_limits: int
) -> None:
    from mlsecops.assess._data import load_dataset
    from mlsecops.data import count_rows, load_npz, load_table, load_xy

    bomb = _suffixless_bomb(tmp_path / "bomb.npz", small_npz_limits)
    loaders: list[Callable[[], object]] = [
        lambda: load_xy(bomb, label=None),
        lambda: load_table(bomb),
        lambda: load_npz(bomb),
        lambda: load_dataset(bomb),  # the robustness / certify / harden loader
        lambda: count_rows(bomb),
    ]
    tracemalloc.start()
    try:
        for load in loaders:
            with deadline(20), pytest.raises(InputError, match=r"uncompressed|GiB"):
                load()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < small_npz_limits, f"peak {peak / 2**20:.0f} MiB while refusing"
    with deadline(30):
        result = cli("data", "poison", str(bomb))
    _refused(result, "refusing to inflate")


def test_member_holding_more_than_its_header_declares_is_refused(tmp_path: Path) -> None:
    from mlsecops.data import load_npz

    path = tmp_path / "lying.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("X", _npy_header((2, 2)) + bytes(32) + bytes(10 << 20))  # 10 MiB of trailing data
    with pytest.raises(InputError, match="more bytes than its header declares"):
        load_npz(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("X", _npy_header((1000, 1000)) + bytes(32))  # declares 8 MB, holds 32 bytes
    with pytest.raises(InputError, match="declares 8000000 bytes"):
        load_npz(path)


def test_suffixless_header_declaring_a_huge_shape_is_refused(tmp_path: Path) -> None:
    from mlsecops.data import load_xy

    path = tmp_path / "shape.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("X", _npy_header((100_000, 100_000)) + bytes(64))
        zf.writestr("y", _npy_header((100_000,)) + bytes(64))
    with pytest.raises(InputError, match=r"74\.5 GiB"):
        load_xy(path, label=None)


def test_corrupt_deflate_stream_is_an_input_error(tmp_path: Path) -> None:
    from mlsecops.data import load_npz

    path = tmp_path / "c.npz"
    np.savez_compressed(path, X=np.arange(10_000.0).reshape(100, 100), y=np.arange(100))
    raw = bytearray(path.read_bytes())
    raw[200:260] = bytes(60)  # inside X's deflate stream
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="not a readable"):
        load_npz(path)


def test_normal_npz_files_still_load(tmp_path: Path) -> None:
    from mlsecops.assess._data import load_dataset
    from mlsecops.data import load_npz, load_xy

    x = np.arange(60.0).reshape(5, 3, 4)
    y = np.array([0, 1, 2, 1, 0])
    np.savez_compressed(tmp_path / "c.npz", X=x, y=y)
    np.savez(tmp_path / "p.npz", X=np.asfortranarray(x), y=y)
    for name in ("c.npz", "p.npz"):
        got_x, got_y, _, classes = load_xy(tmp_path / name, label=None)
        assert np.array_equal(got_x, x) and got_y.tolist() == [0, 1, 2, 1, 0] and classes == ["0", "1", "2"]
        fx, fy = load_dataset(tmp_path / name)
        assert fx.dtype == np.float32 and np.array_equal(fx, x) and np.array_equal(fy, y)
    # members without the .npy suffix are arrays too, read by the same bounded reader
    with zipfile.ZipFile(tmp_path / "s.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        for name, arr in (("X", x), ("y", y)):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr)
            zf.writestr(name, buf.getvalue())
    arrays = load_npz(tmp_path / "s.npz")
    assert np.array_equal(arrays["X"], x) and np.array_equal(arrays["y"], y)


# ---------------------------------------------------------------------- 11.18: object-dtype arrays


def test_object_dtype_npz_is_refused_in_data_poison(cli: Callable[..., Any], tmp_path: Path) -> None:
    from mlsecops.assess._data import load_dataset
    from mlsecops.data import load_table

    path = tmp_path / "obj.npz"
    np.savez(path, X=np.array([[{"a": 1}, 2]] * 4, dtype=object), y=np.array([0, 1, 0, 1]))
    with deadline(20):
        result = cli("data", "poison", str(path))
    _refused(result, "Python objects")
    with pytest.raises(InputError, match="Python objects"):
        load_dataset(path)
    with pytest.raises(InputError, match="Python objects"):
        load_table(path)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="Python objects"):
        load_table(tmp_path / "obj.npy")


def test_object_dtype_labels_are_refused_too(tmp_path: Path) -> None:
    from mlsecops.data import load_xy

    path = tmp_path / "objy.npz"
    np.savez(path, X=np.ones((4, 2)), y=np.array(["a", None, "b", "c"], dtype=object))
    with pytest.raises(InputError, match="Python objects"):
        load_xy(path, label=None)


# -------------------------------------------------------------------- 11.15: CSV lines are bounded


@pytest.mark.parametrize("ending", ["", "\n", "\n1\n"])
def test_csv_row_without_line_break_is_refused(cli: Callable[..., Any], tmp_path: Path, ending: str) -> None:
    from mlsecops.data._readers import MAX_LINE_BYTES

    path = tmp_path / "long.csv"
    with path.open("w") as fh:
        fh.write("a\n1\n")
        fh.write("9" * (3 * MAX_LINE_BYTES) + ending)
    tracemalloc.start()
    try:
        with deadline(20):
            result = cli("data", "profile", str(path), "-o", "p.json")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    _refused(result, "line 3 is longer than 1 MiB")
    assert peak < 80 << 20, f"peak {peak / 2**20:.0f} MiB"


def test_long_line_beyond_the_first_block_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlsecops.data import _readers, load_table

    monkeypatch.setattr(_readers, "_BLOCK_BYTES", 4 << 20)
    path = tmp_path / "late.csv"
    with path.open("w") as fh:
        fh.write("a,b\n" + "1,2\n" * 1_500_000)  # 6 MB of short lines, then one long one
        fh.write("3," + "4" * (2 * _readers.MAX_LINE_BYTES) + "\n5,6\n")
    with pytest.raises(InputError, match=r"line 1500002 is longer than 1 MiB"):
        load_table(path)


def test_stdlib_line_reader_is_bounded(tmp_path: Path) -> None:
    from mlsecops.data._readers import MAX_LINE_BYTES, open_data_file, text_lines

    path = tmp_path / "x.csv"
    path.write_bytes(b"a\n" + b"x" * (MAX_LINE_BYTES + 1))
    with open_data_file(path) as fh, pytest.raises(InputError, match="line 2 is longer"):
        list(text_lines(fh, path))
    path.write_bytes(b"a\n" + b"x" * MAX_LINE_BYTES + b"\n")  # exactly at the limit: fine
    with open_data_file(path) as fh:
        assert len(list(text_lines(fh, path))) == 2


def test_wide_csv_rows_under_the_limit_still_load(tmp_path: Path) -> None:
    from mlsecops.data import load_table

    cols = 20_000
    path = tmp_path / "wide.csv"
    row = ",".join(["12345.678"] * cols)
    path.write_text(",".join(f"c{i}" for i in range(cols)) + "\n" + (row + "\n") * 3)
    assert len(row) > 100_000
    table = load_table(path)
    assert len(table) == cols and table["c0"].tolist() == [12345.678] * 3

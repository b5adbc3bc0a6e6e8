"""Check-then-use on paths in signing (issue 11 item 3): read once, through a safe descriptor, and judge
only the copy. Each test plants the swap or the hostile file and has a benign twin."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from mlsecops.core.errors import InputError, VerificationError
from mlsecops.supplychain import signing
from mlsecops.supplychain.signing import _bundle
from mlsecops.supplychain.signing._hashing import HashAlgorithm, HashTask, hash_tasks


def _model(tmp: Path) -> Path:
    root = tmp / "model"
    (root / "sub").mkdir(parents=True)
    (root / "weights.bin").write_bytes(b"w" * 1000)
    (root / "sub" / "config.json").write_text("{}")
    return root


def test_snapshot_is_immune_to_a_swap_after_the_copy(tmp_path: Path) -> None:
    model = _model(tmp_path)
    with signing.snapshot(model) as snap:
        (model / "weights.bin").write_bytes(b"evil")  # the attacker's swap, after the read
        copy = (snap.path / "weights.bin").read_bytes()
        assert copy == b"w" * 1000
        assert snap.digest == signing.tree_digest((n, h) for n, h, _ in signing.content_files(snap.path))
        assert (snap.path.stat().st_mode & 0o777) == 0o700
    assert not snap.path.exists()  # removed when the block ends


def test_snapshot_of_a_single_file_keeps_its_name(tmp_path: Path) -> None:
    f = tmp_path / "model.pt"
    f.write_bytes(b"torch")
    with signing.snapshot(f) as snap:
        assert snap.path.name == "model.pt" and snap.path.read_bytes() == b"torch"
        assert [n for n, _, _ in snap.files] == ["."]


def test_snapshot_refuses_symlinks_and_fifos(tmp_path: Path) -> None:
    model = _model(tmp_path)
    (tmp_path / "secret").write_text("secret")
    (model / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(InputError, match="symlink"), signing.snapshot(model):
        pass
    (model / "link").unlink()
    os.mkfifo(model / "pipe")
    with pytest.raises(InputError, match="regular file"), signing.snapshot(model):
        pass


def test_open_regular_file_refuses_a_symlink_swapped_in(tmp_path: Path) -> None:
    target, link = tmp_path / "target", tmp_path / "weights.bin"
    target.write_bytes(b"x")
    link.symlink_to(target)
    with pytest.raises(InputError, match="symlink"):
        signing.open_regular_file(link)
    with signing.open_regular_file(target) as fh:  # the benign twin
        assert fh.read() == b"x"


def test_bundle_reader_refuses_a_fifo_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "model.sig"
    os.mkfifo(fifo)
    done: list[BaseException] = []

    def read() -> None:
        try:
            signing.load_bundle_file(fifo)
        except BaseException as err:
            done.append(err)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout=10)
    assert not t.is_alive(), "reading a FIFO bundle hung"
    assert isinstance(done[0], InputError) and "regular file" in str(done[0])


def test_bundle_reader_bounds_what_it_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_bundle, "MAX_BUNDLE_BYTES", 64)
    big, small = tmp_path / "big.sig", tmp_path / "small.sig"
    big.write_bytes(b"{" * 65)
    small.write_bytes(b"{" * 64)
    with pytest.raises(VerificationError, match="too large"):
        signing.load_bundle_file(big)
    assert signing.load_bundle_file(small) == b"{" * 64


def test_a_shard_of_a_file_that_grew_after_the_walk_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"a" * 8)
    task = HashTask("w.bin:0:8", f, 0, 8, 8, file_size=8)
    assert hash_tasks([task], HashAlgorithm.SHA256)  # the benign twin
    with f.open("ab") as fh:
        fh.write(b"appended after the walk")
    with pytest.raises(InputError, match="changed size"):
        hash_tasks([task], HashAlgorithm.SHA256)


def test_sharded_verification_sees_appended_bytes(tmp_path: Path) -> None:
    model = _model(tmp_path)
    key_path = tmp_path / "k.key"
    signing.create_keypair(key_path, key_type=signing.KeyType.ED25519)
    signing.sign_model(model, signing.load_private_key(key_path), shard_size=256)
    public = signing.load_public_key(Path(str(key_path) + ".pub"))
    assert signing.verify_model(model, public).files > 1
    with (model / "weights.bin").open("ab") as fh:
        fh.write(b"tail")
    with pytest.raises(VerificationError, match=r"added|modified"):
        signing.verify_model(model, public)


def test_a_folder_swapped_for_a_symlink_cannot_redirect_the_read(tmp_path: Path) -> None:
    model = _model(tmp_path)
    with signing.open_model_file(model, "sub/config.json") as fh:  # the benign twin
        assert fh.read() == b"{}"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.json").write_text("secret")
    (model / "sub" / "config.json").unlink()
    (model / "sub").rmdir()
    (model / "sub").symlink_to(outside)  # swapped in after a walk saw a real folder
    with pytest.raises(InputError, match="symlink"):
        signing.open_model_file(model, "sub/config.json")


def test_key_files_are_read_once_and_a_fifo_is_refused(tmp_path: Path) -> None:
    pub, _ = signing.create_keypair(tmp_path / "k.key", key_type=signing.KeyType.ED25519)
    assert signing.load_public_key(pub) is not None  # the benign twin
    fifo = tmp_path / "fifo.pub"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="regular file"):
        signing.load_public_key(fifo)


def test_signing_never_writes_through_a_planted_temporary_name(tmp_path: Path) -> None:
    model = _model(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    planted = tmp_path / f".model.sig.tmp-{os.getpid()}"  # the name signing used to write through
    os.link(victim, planted)
    signing.create_keypair(tmp_path / "k.key", key_type=signing.KeyType.ED25519)
    result = signing.sign_model(model, signing.load_private_key(tmp_path / "k.key"))
    assert victim.read_text() == "precious"
    assert result.signature.stat().st_mode & 0o777 == 0o644
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model.sig.tmp-") and p != planted]


def test_hashing_a_walked_folder_refuses_a_folder_swapped_for_a_symlink(tmp_path: Path) -> None:
    from mlsecops.supplychain.signing._manifest import Serialization, _tasks, _walk

    model = _model(tmp_path)
    ser = Serialization()
    tasks = list(_tasks(_walk(model, ser, ser.ignore_paths), ser, root=model))
    assert len(hash_tasks(tasks, HashAlgorithm.SHA256)) == 2  # the benign twin
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.json").write_text('{"evil": true}')
    (model / "sub" / "config.json").unlink()
    (model / "sub").rmdir()
    (model / "sub").symlink_to(outside)  # after the walk, before the read
    with pytest.raises(InputError, match="symlink"):
        hash_tasks(tasks, HashAlgorithm.SHA256)

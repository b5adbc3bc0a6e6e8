"""Quarantine: write the clean rows and the suspect rows of a data file to separate files.

Nothing is deleted: the input stays as it is, and ``DIR/<stem>.clean.<ext>`` and
``DIR/<stem>.suspect.<ext>`` hold its rows split by a suspect mask (the suspect file adds the columns
``_row``, ``_score`` and ``_reason`` for CSV and Parquet, the arrays ``rows``/``scores`` for ``.npz``).
CSV is streamed row by row, so quarantining a large file keeps constant memory. ``record_quarantine``
stores both files in the workspace's artifact store and appends one ``data.quarantine`` audit event
naming who quarantined what.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.data._readers import file_format, load_npz, open_data_file, text_lines

__all__ = ["QuarantineResult", "record_quarantine", "write_quarantine"]


@dataclass(frozen=True)
class QuarantineResult:
    """Where the split rows went."""

    source: Path
    """The input file (unchanged)."""
    clean: Path
    """File of the rows not suspected."""
    suspect: Path
    """File of the suspect rows."""
    clean_rows: int
    """Rows written to ``clean``."""
    suspect_rows: int
    """Rows written to ``suspect``."""

    def as_json(self) -> dict[str, Any]:
        """JSON-able summary for reports and audit details."""
        return {
            "source": str(self.source),
            "clean": str(self.clean),
            "suspect": str(self.suspect),
            "clean_rows": self.clean_rows,
            "suspect_rows": self.suspect_rows,
        }


def _open_private(path: Path) -> Any:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    return os.fdopen(fd, "w", newline="", encoding="utf-8")


def write_quarantine(
    source: Path, mask: np.ndarray, suspects: list[dict[str, Any]], out_dir: Path
) -> QuarantineResult:
    """Split ``source`` by ``mask`` (True = suspect) into two files in ``out_dir``.

    Args:
        source: the data file that was checked.
        mask: one boolean per data row.
        suspects: ``{row, score, reason}`` entries, used for the suspect file's extra columns.
        out_dir: created if missing.

    Raises:
        InputError: the folder cannot be written, or the mask does not match the file's rows.
    """
    fmt = file_format(source)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create quarantine folder {out_dir}: {err.strerror or err}") from err
    ext = source.suffix.lower()
    clean, suspect = out_dir / f"{source.stem}.clean{ext}", out_dir / f"{source.stem}.suspect{ext}"
    if source.resolve() in (clean.resolve(), suspect.resolve()):
        raise InputError("the quarantine folder must not be the folder of the input file when names collide")
    info = {int(s["row"]): s for s in suspects if "row" in s}
    try:
        if fmt == "csv":
            n = _split_csv(source, mask, info, clean, suspect)
        elif fmt == "parquet":
            n = _split_parquet(source, mask, info, clean, suspect)
        elif fmt == "npz":
            n = _split_npz(source, mask, info, clean, suspect)
        else:
            raise InputError(f"{source}: quarantine supports CSV, Parquet and .npz files")
    except OSError as err:
        raise InputError(f"cannot write quarantine files in {out_dir}: {err.strerror or err}") from err
    if n != mask.shape[0]:
        raise InputError(f"{source}: the file has {n} rows but the suspect mask {mask.shape[0]}")
    k = int(mask.sum())
    return QuarantineResult(source=source, clean=clean, suspect=suspect, clean_rows=n - k, suspect_rows=k)


def _split_csv(
    source: Path, mask: np.ndarray, info: dict[int, dict[str, Any]], clean: Path, suspect: Path
) -> int:
    delimiter = "\t" if source.suffix.lower() == ".tsv" else ","
    n = 0
    with (
        open_data_file(source) as fh,
        _open_private(clean) as fc,
        _open_private(suspect) as fs,
    ):
        reader = csv.reader(text_lines(fh, source), delimiter=delimiter)  # lines bounded in length
        wc, ws = csv.writer(fc, delimiter=delimiter), csv.writer(fs, delimiter=delimiter)
        header = next(reader)
        wc.writerow(header)
        ws.writerow([*header, "_row", "_score", "_reason"])
        for row in reader:
            if not row:
                continue
            if n < mask.shape[0] and mask[n]:
                s = info.get(n, {})
                ws.writerow([*row, n, s.get("score", ""), s.get("reason", "")])
            else:
                wc.writerow(row)
            n += 1
    return n


def _split_parquet(
    source: Path, mask: np.ndarray, info: dict[int, dict[str, Any]], clean: Path, suspect: Path
) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(source)
    n = int(table.num_rows)
    if n != mask.shape[0]:
        return n
    rows = np.flatnonzero(mask)
    pq.write_table(table.filter(pa.array(~mask)), clean)
    sus = table.take(pa.array(rows))
    sus = sus.append_column("_row", pa.array(rows.astype(np.int64)))
    sus = sus.append_column("_score", pa.array([float(info.get(int(r), {}).get("score", 0.0)) for r in rows]))
    sus = sus.append_column("_reason", pa.array([str(info.get(int(r), {}).get("reason", "")) for r in rows]))
    pq.write_table(sus, suspect)
    return n


def _split_npz(
    source: Path, mask: np.ndarray, info: dict[int, dict[str, Any]], clean: Path, suspect: Path
) -> int:
    arrays = load_npz(source)  # the bounded reader: every member checked before it inflates
    n = int(arrays["X"].shape[0]) if "X" in arrays else int(next(iter(arrays.values())).shape[0])
    if n != mask.shape[0]:
        return n
    rows = np.flatnonzero(mask)
    per_row = {k: v for k, v in arrays.items() if v.ndim >= 1 and v.shape[0] == n}
    with clean.open("wb") as fh:
        np.savez(fh, **{k: v[~mask] for k, v in per_row.items()})
    with suspect.open("wb") as fh:
        np.savez(
            fh,
            **{k: v[mask] for k, v in per_row.items()},
            rows=rows,
            scores=np.array([float(info.get(int(r), {}).get("score", 0.0)) for r in rows]),
        )
    return n


def record_quarantine(
    result: QuarantineResult, *, home: Path, database_url: str | None, actor: str
) -> dict[str, str]:
    """Store both files in the workspace and append one ``data.quarantine`` audit event.

    Returns:
        ``{"clean_sha256": ..., "suspect_sha256": ...}``.

    Raises:
        WorkspaceError: the workspace cannot be opened.
    """
    from mlsecops.store import Workspace, audit

    with Workspace.open(home, database_url, actor=actor) as ws:
        clean_sha = ws.add_artifact(result.clean, actor=actor)
        suspect_sha = ws.add_artifact(result.suspect, actor=actor)
        with ws.session() as s:
            audit.append(
                s,
                actor=actor,
                action="data.quarantine",
                subject=str(result.source),
                details={**result.as_json(), "clean_sha256": clean_sha, "suspect_sha256": suspect_sha},
            )
    return {"clean_sha256": clean_sha, "suspect_sha256": suspect_sha}

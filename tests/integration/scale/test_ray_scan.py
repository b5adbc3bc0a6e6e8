"""The same scan on every engine: `mlsecops scan DIR --executor inline|process|ray` give the same
verdicts and findings as the default pool, on a directory of planted malicious and benign files."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from mlsecops.core.executor import get_executor
from mlsecops.supplychain.scanner import scan_paths


class _Exec:
    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, ("echo planted",))


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hub")
    for i in range(150):  # more files than one task holds, so several tasks run
        folder = root / f"model-{i % 7}"
        folder.mkdir(exist_ok=True)
        if i % 10 == 0:
            (folder / f"evil-{i}.pkl").write_bytes(pickle.dumps(_Exec(), protocol=4))
        else:
            (folder / f"weights-{i}.pkl").write_bytes(pickle.dumps({"w": list(range(i)), "b": i}, protocol=4))
    return root


def _verdicts(results: list[Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    return [(r.path, sorted((str(h.severity), h.title) for h in r.hits)) for r in results]


def test_scan_results_are_identical_on_every_engine(hub: Path, ray_cluster: str) -> None:
    baseline = _verdicts(scan_paths([hub], workers=2))
    assert sum(1 for _, hits in baseline if hits) == 15  # every planted file flagged, no benign one
    for engine, kw in (("inline", {}), ("process", {"workers": 2}), ("ray", {"address": ray_cluster})):
        assert _verdicts(scan_paths([hub], executor=get_executor(engine, **kw))) == baseline, engine


def test_cli_scan_on_ray(cli: Any, hub: Path, ray_cluster: str) -> None:
    default = cli("scan", str(hub), "--format", "json")
    on_ray = cli("scan", str(hub), "--format", "json", "--executor", "ray", "--address", ray_cluster)
    assert default.code == on_ray.code == 1

    def strip(doc: dict[str, Any]) -> list[Any]:
        return [(a["path"], a["verdict"], [f["title"] for f in a["findings"]]) for a in doc["artifacts"]]

    assert strip(json.loads(on_ray.out)) == strip(json.loads(default.out))
    assert cli("scan", str(hub), "--address", ray_cluster).code == 2

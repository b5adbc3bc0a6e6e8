"""A local Ray cluster for the scale-out tests: a head and a second node, each its own ``ray start``
process tree on this machine (as separate machines would be), on free loopback ports; started once per
test session and stopped at its end (``mlsecops.core._ray_local``). CI installs the ``ray`` extra, so
these tests never skip there.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlsecops.core._ray_local import enable_token_auth, local_cluster

# Token authentication with a token of this session's own, set before Ray is imported (it reads its
# auth mode once): nothing else on the machine can join or submit work, nothing in $HOME is used.
enable_token_auth()

try:
    import ray  # noqa: F401
except ImportError:  # pragma: no cover - CI installs the extra and must never skip these
    if os.environ.get("CI"):
        raise
    pytest.skip("the ray extra is not installed", allow_module_level=True)

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the test modules import _ray_fns as the Ray nodes do
    sys.path.insert(0, str(HERE))


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a two-node local cluster (1 CPU per node); this process is connected to it."""
    with local_cluster(
        nodes=2,
        cpus_per_node=1,
        pythonpath=(HERE, HERE.parents[2]),
        log_dir=tmp_path_factory.mktemp("ray-logs"),
    ) as address:
        yield address

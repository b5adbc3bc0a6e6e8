"""``local_cluster`` (``mlsecops.core._ray_local``), the start-up of the scale tests' cluster and of the
multi-node scan benchmark: bad sizes refused, a second cluster refused while connected to one, token
authentication set up before Ray is imported, and a node that does not start a clear error quoting its
log (without the token).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlsecops.core._ray_local import MAX_NODES, local_cluster, node_ip
from mlsecops.core.errors import ConfigError
from mlsecops.core.executor import ExecutorError


def _python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (Ray not imported yet, no token in its environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(("nodes", "cpus"), [(0, 1), (MAX_NODES + 1, 1), (2, 0)])
def test_bad_sizes_are_refused(nodes: int, cpus: int) -> None:
    with pytest.raises(ConfigError), local_cluster(nodes=nodes, cpus_per_node=cpus):
        pass


def test_node_addresses_are_loopback() -> None:
    assert [node_ip(i) for i in range(3)] == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


def test_a_second_cluster_is_refused_while_connected(ray_cluster: str) -> None:
    import ray

    with pytest.raises(ExecutorError, match="already connected"), local_cluster(nodes=1):
        pass
    assert ray.is_initialized()  # the session's cluster is left alone
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2


def test_token_auth_is_set_before_ray_is_imported(tmp_path: Path) -> None:
    out = _python(
        """
        import os
        from mlsecops.core._ray_local import enable_token_auth
        token = enable_token_auth()
        assert os.environ["RAY_AUTH_MODE"] == "token" and os.environ["RAY_AUTH_TOKEN"] == token
        assert len(token) == 64 and int(token, 16) >= 0
        import ray
        assert enable_token_auth() == token  # kept once Ray is imported
        print("ok")
        """,
        tmp_path,
    )
    assert out.stdout.strip() == "ok", out.stderr
    late = _python(
        """
        import ray
        from mlsecops.core._ray_local import enable_token_auth
        enable_token_auth()
        """,
        tmp_path,
    )
    assert late.returncode == 1 and "imported before token authentication" in late.stderr


@pytest.mark.parametrize(
    ("then", "timeout", "expected"),
    [("exit 1", 60, "exited with code 1"), ("exec sleep 600", 3, "did not start within 3 s")],
)
def test_a_node_that_does_not_start_is_a_clear_error(
    tmp_path: Path, then: str, timeout: int, expected: str
) -> None:
    fake = tmp_path / "ray"  # a `ray` command that fails or hangs as a broken installation would
    fake.write_text(f'#!/bin/sh\necho "raylet: cannot bind, token=$RAY_AUTH_TOKEN" >&2\n{then}\n')
    fake.chmod(0o755)
    out = _python(
        f"""
        import os
        from mlsecops.core import _ray_local
        from mlsecops.core.executor import ExecutorError
        _ray_local._ray_cli = lambda: {str(fake)!r}
        try:
            with _ray_local.local_cluster(nodes=2, log_dir={str(tmp_path / "logs")!r}, timeout={timeout}):
                pass
        except ExecutorError as err:
            print(str(err).replace(os.environ["RAY_AUTH_TOKEN"], "LEAKED"))
        """,
        tmp_path,
    )
    assert "the Ray head at 127.0.0.2:" in out.stdout, out.stderr
    assert expected in out.stdout and "raylet: cannot bind, token=<token>" in out.stdout
    assert "LEAKED" not in out.stdout

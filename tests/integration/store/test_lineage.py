"""The lineage graph on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from mlsecops.core import InputError
from mlsecops.store import Workspace, audit, lineage


def test_graph_walks_back_to_raw_data(workspace: Workspace) -> None:
    with workspace.session() as s:
        raw = lineage.add_node(s, kind="dataset", name="ratings", version="1", digest="a" * 64, actor="alice")
        clean = lineage.add_node(
            s, kind="dataset", name="ratings-clean", version="1", digest="b" * 64, actor="alice"
        )
        run = lineage.add_node(s, kind="training_run", name="run-7", actor="alice", attributes={"epochs": 3})
        model = lineage.add_node(
            s, kind="model_version", name="fraud", version="3", digest="c" * 64, actor="alice"
        )
        lineage.link(s, raw, clean, "derived_from", actor="alice")
        lineage.link(s, clean, run, "trained_on", actor="alice")
        lineage.link(s, run, model, "produced", actor="alice")
        lineage.link(s, run, model, "produced", actor="alice")  # idempotent
    with workspace.session(readonly=True) as s:
        node = lineage.find_node(s, "model_version", "fraud", "3")
        assert node is not None
        graph = lineage.ancestors(s, node)
        assert {n.name for n in graph.nodes.values()} == {"fraud", "run-7", "ratings-clean", "ratings"}
        assert len(graph.edges) == 3
        assert lineage.node_attributes(graph.nodes[run.id]) == {"epochs": 3}
        assert len(list(audit.iter_events(s, action="lineage.*"))) == 7
        assert audit.verify(s).ok


def test_changed_content_without_new_version_is_refused(workspace: Workspace) -> None:
    with workspace.session() as s:
        lineage.add_node(s, kind="dataset", name="d", version="1", digest="a" * 64, actor="a")
    with pytest.raises(InputError, match="register a new version"), workspace.session() as s:
        lineage.add_node(s, kind="dataset", name="d", version="1", digest="b" * 64, actor="a")

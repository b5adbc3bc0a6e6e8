"""Guard metrics: principal labels stay bounded whatever the callers do; the exposition parses."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from mlsecops.runtime.metrics import MAX_PRINCIPAL_LABELS, OTHER, PRINCIPAL_LABEL_AFTER, GuardMetrics


def test_heavy_callers_get_labels_one_off_callers_do_not() -> None:
    m = GuardMetrics()
    labels = [m.principal_label("heavy") for _ in range(PRINCIPAL_LABEL_AFTER + 5)]
    assert labels[: PRINCIPAL_LABEL_AFTER - 1] == [OTHER] * (PRINCIPAL_LABEL_AFTER - 1)
    assert labels[-1] == "heavy"
    assert m.principal_label("once") == OTHER


def test_principal_labels_are_bounded_against_a_flood_of_identities() -> None:
    m = GuardMetrics()
    seen = set()
    for i in range(MAX_PRINCIPAL_LABELS * 3):
        for _ in range(PRINCIPAL_LABEL_AFTER):
            label = m.principal_label(f"jwt:user-{i}")
            m.principal_requests.labels(label, "ok").inc()
            seen.add(label)
    assert len(seen) == MAX_PRINCIPAL_LABELS + 1  # the first heavy callers, and "other"
    families = {f.name: f for f in text_string_to_metric_families(m.render().decode())}
    samples = [s for s in families["mlsecops_guard_principal_requests"].samples if s.name.endswith("_total")]
    assert len(samples) == MAX_PRINCIPAL_LABELS + 1
    assert sum(s.value for s in samples) == MAX_PRINCIPAL_LABELS * 3 * PRINCIPAL_LABEL_AFTER

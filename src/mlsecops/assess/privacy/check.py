"""The ``assess.privacy`` check: membership-inference audit, output defences and inversion probes.

Options (CLI ``mlsecops assess privacy`` and pipeline stages alike): ``model``; ``members`` and
``non_members`` (``.npz`` with ``X``/``y``, or CSV/Parquet with ``label``); ``reference_data`` (the
pool the reference models draw from); ``attacks`` (names, default every one that applies);
``references`` (K, default 8); ``executor`` (``inline``, ``process``, ``ray`` or a registered engine),
``workers`` and ``address`` (the Ray cluster); ``defences`` (evaluate the output defences, default true); ``sensitive`` (a feature
name: attribute inference); ``reconstruct`` (class reconstruction for image data, default true when
the records are images); ``epochs``, ``lr``, ``batch_size`` (how PyTorch reference models train); and
the model options every check shares (``output``, ``timeout``, ``input_shape``, ``weights``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.assess._data import encode_labels
from mlsecops.assess._figures import image_pairs_svg
from mlsecops.assess._options import load_target_model
from mlsecops.assess.privacy._attacks import ATTACK_NAMES
from mlsecops.assess.privacy._reference import learner_of
from mlsecops.assess.privacy.audit import DEFAULT_REFERENCES, audit_privacy
from mlsecops.assess.privacy.defences import evaluate_defences
from mlsecops.assess.privacy.inversion import attribute_inference, reconstruct_classes
from mlsecops.assess.privacy.report import METRICS, privacy_report
from mlsecops.core.checks import CheckKind, ContractCases, Target, register
from mlsecops.core.errors import InputError
from mlsecops.core.executor import ENGINES, get_executor
from mlsecops.core.findings import Figure, Report, utcnow
from mlsecops.core.redaction import redact

__all__ = ["PrivacyCheck"]

_OPTIONS = (
    "model",
    "members",
    "non_members",
    "reference_data",
    "label",
    "attacks",
    "references",
    "executor",
    "workers",
    "address",
    "defences",
    "sensitive",
    "reconstruct",
    "epochs",
    "lr",
    "batch_size",
    "input_shape",
    "output",
    "timeout",
    "weights",
)


def _read(target: Target, name: str, *, required: bool) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    from mlsecops.data import read_labelled

    path = target.path_option(name)
    if path is None:
        if required:
            raise InputError(f"the privacy audit needs {name.replace('_', '-')} (a data file)")
        return None
    if not path.exists():
        raise InputError(f"{name.replace('_', '-')} file {path} does not exist")
    x, y, names = read_labelled(
        path, label=target.opt_str("label"), default_labels=("label", "y", "target"), dtype=np.float32
    )
    return x, y, names


class PrivacyCheck:
    """Membership inference, output defences and inversion probes on one model (``assess.privacy``).

    Args:
        progress: called as ``(step, done, total)`` while the audit runs.
    """

    def __init__(self, *, progress: Callable[[str, int, int], None] | None = None) -> None:
        self.progress = progress

    def run(self, target: Target) -> Report:
        """Load the model and the record sets, audit, and report.

        Raises:
            InputError: missing or malformed model, data or options; overlapping sets; too few rows.
            ConfigError: a bad option value.
        """
        started = utcnow()
        seed = int(target.seed or 0)
        model_ref = target.opt_str("model") or (str(target.paths[0]) if target.paths else None)
        if not model_ref:
            raise InputError("the privacy audit needs a model (option model)")
        if target.opt_str("model") and not model_ref.startswith(("http://", "https://", "python:")):
            model_ref = str(target.path_option("model"))  # relative to the pipeline file
        members = _read(target, "members", required=True)
        non_members = _read(target, "non_members", required=True)
        pool = _read(target, "reference_data", required=False)
        assert members is not None and non_members is not None
        model = load_target_model(target, model_ref, members[0])
        classes = getattr(model, "classes", None)
        ym, yn = encode_labels(members[1], classes), encode_labels(non_members[1], classes)
        yp = encode_labels(pool[1], classes) if pool is not None else None
        engine = target.opt_choice("executor", sorted(ENGINES), "process")
        executor = get_executor(
            engine,
            workers=target.opt_int("workers", lo=1),
            progress=self.progress,
            address=target.opt_str("address"),
        )
        learner = learner_of(
            model,
            epochs=target.opt_int("epochs", 30, lo=1),
            lr=target.opt_float("lr", 1e-3, lo=0.0),
            batch_size=target.opt_int("batch_size", 64, lo=1),
        )
        attacks = target.opt_list("attacks", lower=True) or None
        audit = audit_privacy(
            model,
            (members[0], ym),
            (non_members[0], yn),
            reference=(pool[0], yp) if pool is not None and yp is not None else None,
            attacks=attacks,
            references=target.opt_int("references", DEFAULT_REFERENCES, lo=2),
            executor=executor,
            learner=learner,
            seed=seed,
            progress=self.progress,
        )
        defences = evaluate_defences(audit, seed=seed) if target.opt_bool("defences", True) else ()
        probes: dict[str, Any] = {}
        figures: list[Figure] = []
        sensitive = target.opt_str("sensitive")
        if sensitive is not None:
            probes["attribute_inference"] = attribute_inference(
                model, (members[0], ym), (non_members[0], yn), members[2], sensitive, seed=seed
            )
        image_shape = tuple(int(s) for s in members[0].shape[1:])
        if target.opt_bool("reconstruct", len(image_shape) >= 2) and not audit.label_only:
            summary, pairs = reconstruct_classes(
                model, (members[0], ym), (non_members[0], yn), seed=seed, image_shape=image_shape
            )
            probes["reconstruction"] = summary
            lo, hi = float(members[0].min()), float(members[0].max())
            figures.append(
                Figure(
                    title="Class reconstructions | mean of the members of the class",
                    content=image_pairs_svg(pairs, lower=lo, upper=hi),
                )
            )
        return privacy_report(
            audit,
            subject=redact(model_ref),
            defences=defences,
            probes=probes,
            figures=figures,
            started=started,
        )

    @classmethod
    def contract_cases(cls, tmp_dir: Path) -> ContractCases:
        """A small overfit scikit-learn model with member and non-member files, and a corrupt file."""
        import pickle

        from sklearn.datasets import load_breast_cancer
        from sklearn.linear_model import LogisticRegression

        x, y = load_breast_cancer(return_X_y=True)
        x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)
        rng = np.random.default_rng(0)
        order = rng.permutation(len(x))
        m, n = order[:60], order[60:120]
        est = LogisticRegression(C=100.0, max_iter=2000).fit(x[m], y[m])
        model_path = Path(tmp_dir) / "model.pkl"
        model_path.write_bytes(pickle.dumps(est))
        np.savez(Path(tmp_dir) / "members.npz", X=x[m], y=y[m])
        np.savez(Path(tmp_dir) / "non_members.npz", X=x[n], y=y[n])
        bad = Path(tmp_dir) / "corrupt.npz"
        bad.write_bytes(b"PK\x03\x04 this is not a real archive")
        opts: dict[str, Any] = {
            "model": str(model_path),
            "members": str(Path(tmp_dir) / "members.npz"),
            "non_members": str(Path(tmp_dir) / "non_members.npz"),
            "attacks": "loss,confidence,label_only",
            "executor": "inline",
        }
        return ContractCases(
            valid=Target(options=opts, seed=1),
            corrupt=Target(options={**opts, "non_members": str(bad)}, seed=1),
        )


register(
    "assess.privacy",
    kind=CheckKind.AUDIT,
    summary="Membership inference (threshold, calibrated, LiRA, RMIA, label-only), output defences, inversion",
    metrics=METRICS,
    options=_OPTIONS,
)(PrivacyCheck)

_ = ATTACK_NAMES  # the attack names the ``attacks`` option accepts (validated by audit_privacy)

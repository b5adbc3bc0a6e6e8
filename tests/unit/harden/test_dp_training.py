"""Differentially private training (Opacus) and the measured-leakage check of its result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests._deps import require

from mlsecops.core.errors import InputError

torch = require("torch", "torch")
require("opacus", "privacy")
torch.set_num_threads(1)

from mlsecops.harden.dp import (  # noqa: E402
    PrivacyUnsupportedError,
    PublicData,
    dp_train,
    leakage_check,
    membership_scores,
)
from mlsecops.models.pytorch import TorchModel  # noqa: E402


def _blobs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)


def _mlp(width: int = 16, d: int = 8) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(d, width), torch.nn.ReLU(), torch.nn.Linear(width, 2))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_reaches_the_target_epsilon_and_learns(accountant: str) -> None:
    x, y = _blobs(600)
    r = dp_train(
        _mlp(),
        x[:400],
        y[:400],
        epsilon=2.0,
        delta=1e-4,
        epochs=8,
        batch_size=100,
        lr=1e-2,
        accountant=accountant,
    )
    assert r.epsilon <= 2.0 * 1.001  # the accountant's value never exceeds the target
    assert r.epsilon >= 1.8  # and the noise was not over-provisioned
    assert r.accountant == accountant and r.noise_multiplier > 0.5
    assert 0 < r.sample_rate < 1 and r.steps > 0
    facts = r.facts()
    assert facts["sampling"] == "poisson" and facts["delta"] == 1e-4
    with torch.no_grad():
        acc = float((r.module(torch.from_numpy(x[400:])).argmax(1).numpy() == y[400:]).mean())
    assert acc > 0.75  # chance is 0.5


def test_refuses_torchscript_with_a_clear_message() -> None:
    scripted = torch.jit.script(_mlp())
    x, y = _blobs(50)
    with pytest.raises(PrivacyUnsupportedError, match=r"TorchScript.*python:module:Class"):
        dp_train(scripted, x, y, epsilon=1.0, delta=1e-3, epochs=1)


def test_refuses_exported_batchnorm_but_replaces_it_in_a_python_module(tmp_path: Path) -> None:
    net = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(), torch.nn.Linear(16, 2)
    )
    TorchModel(net.eval(), input_shape=(8,)).save(tmp_path / "bn.pt2")
    program = TorchModel.from_file(tmp_path / "bn.pt2").module
    x, y = _blobs(200)
    with pytest.raises(PrivacyUnsupportedError, match=r"1\.weight is used by aten\.batch_norm"):
        dp_train(program, x, y, epsilon=1.0, delta=1e-3, epochs=1, accountant="rdp")
    r = dp_train(net.train(), x, y, epsilon=1.0, delta=1e-3, epochs=2, batch_size=50, accountant="rdp")
    assert any("BatchNorm1d" in n and "GroupNorm" in n and "mix rows" in n for n in r.notes)
    assert isinstance(r.module[1], torch.nn.GroupNorm)


def test_exported_program_trains_privately_and_saves_as_pt2(tmp_path: Path) -> None:
    TorchModel(_mlp(), input_shape=(8,)).save(tmp_path / "m.pt2")
    program = TorchModel.from_file(tmp_path / "m.pt2").module
    before = [p.detach().clone() for p in program.parameters()]
    x, y = _blobs(600)
    r = dp_train(
        program,
        x[:400],
        y[:400],
        epsilon=3.0,
        delta=1e-4,
        epochs=8,
        batch_size=100,
        lr=1e-2,
        accountant="rdp",
    )
    assert any("rebuilt 2 layer" in n for n in r.notes)
    assert all(torch.equal(a, b) for a, b in zip(before, program.parameters(), strict=True))  # a copy trained
    TorchModel(r.module, input_shape=(8,)).save(tmp_path / "private.pt2")
    back = TorchModel.from_file(tmp_path / "private.pt2")
    assert float(np.mean(back.predict_proba(x[400:]).argmax(1) == y[400:])) > 0.8


def test_input_range_is_folded_into_the_model_and_checked() -> None:
    x, y = _blobs(300)
    x = (x - x.min()).astype(np.float32)
    hi = float(x.max())
    r = dp_train(_mlp(), x, y, epsilon=2.0, delta=1e-3, epochs=1, input_range=(0.0, hi), accountant="rdp")
    assert isinstance(r.module, torch.nn.Sequential) and any("public range" in n for n in r.notes)
    with pytest.raises(InputError, match="outside the input range"):
        dp_train(_mlp(), x, y, epsilon=2.0, delta=1e-3, epochs=1, input_range=(0.0, hi / 2))


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"epsilon": 0.0}, "epsilon must be a positive"),
        ({"epsilon": 1.0, "delta": 0.05}, "not below 1/n"),
        ({"epsilon": 1.0, "accountant": "moments"}, "accountant must be"),
    ],
)
def test_bad_parameters_are_one_line_errors(kw: dict[str, object], message: str) -> None:
    x, y = _blobs(100)
    with pytest.raises(InputError, match=message):
        dp_train(_mlp(), x, y, epochs=1, **kw)  # type: ignore[arg-type]


def _memorise(x: np.ndarray, y: np.ndarray, steps: int = 400) -> torch.nn.Module:
    """A wide MLP trained without privacy until it fits random labels (pure memorisation)."""
    net = _mlp(width=256, d=x.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net.eval()


@pytest.mark.timeout(120)
def test_leakage_check_flags_an_overfit_model_and_passes_a_private_one() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 8)).astype(np.float32)
    y = rng.integers(0, 2, size=600).astype(np.int64)  # random labels: only memorisation fits them
    members, non_members = (x[:300], y[:300]), (x[300:], y[300:])
    overfit = TorchModel(_memorise(*members), input_shape=(8,))
    assert float(np.mean(overfit.predict_proba(members[0]).argmax(1) == members[1])) == 1.0
    scores, member = membership_scores(overfit, members, non_members)
    claimed = 0.5
    leak = leakage_check(scores, member, epsilon=claimed, delta=1e-4)
    assert not leak.consistent and leak.empirical_epsilon > claimed  # a planted leak is caught
    assert leak.advantage > leak.advantage_bound

    r = dp_train(_mlp(width=256), *members, epsilon=claimed, delta=1e-4, epochs=10, batch_size=100)
    private = TorchModel(r.module, input_shape=(8,))
    scores, member = membership_scores(private, members, non_members)
    ok = leakage_check(scores, member, epsilon=r.epsilon, delta=r.delta)
    assert ok.consistent and ok.empirical_epsilon <= r.epsilon  # the private model is not flagged
    assert ok.advantage < leak.advantage


def test_leakage_check_mirrors_when_members_and_non_members_swap() -> None:
    rng = np.random.default_rng(0)
    s = np.r_[rng.normal(3, 1, 200), rng.normal(0, 1, 200)]
    member = np.arange(400) < 200
    a = leakage_check({"loss": s}, member, epsilon=1.0, delta=1e-5)
    b = leakage_check({"loss": -s}, ~member, epsilon=1.0, delta=1e-5)
    assert not a.consistent and not b.consistent
    assert a.auc == pytest.approx(b.auc)
    with pytest.raises(InputError, match="at least 4 members"):
        leakage_check({"loss": s[:3]}, member[:3], epsilon=1.0, delta=1e-5)


class _Memorised(torch.nn.Module):
    """A layer whose weight has no initialiser of its own (it could only be kept, never re-drawn)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(8, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


def test_weights_are_drawn_afresh_unless_fine_tuning() -> None:
    """Weights a model file carries were trained outside the accountant: DP training must not start
    from them (their training would be released in the clear), unless the user says they are public."""
    x, y = _blobs(200)
    trained = _mlp()
    with torch.no_grad():
        for p in trained.parameters():
            p.fill_(0.123)  # stands for weights fitted non-privately on the same data
    kwargs = {"epsilon": 5.0, "delta": 1e-3, "epochs": 1, "batch_size": 50, "accountant": "rdp", "lr": 1e-9}
    fresh = dp_train(trained, x, y, **kwargs)  # type: ignore[arg-type]
    kept = dp_train(trained, x, y, fine_tune=True, **kwargs)  # type: ignore[arg-type]
    first = lambda m: next(p for p in m.parameters()).detach()  # noqa: E731
    assert not torch.allclose(first(fresh.module), torch.full_like(first(fresh.module), 0.123), atol=1e-3)
    assert torch.allclose(first(kept.module), torch.full_like(first(kept.module), 0.123), atol=1e-3)
    assert fresh.facts()["initialisation"] == "random"
    assert kept.facts()["initialisation"] == "given weights"
    assert any("fine-tuned" in n for n in kept.notes)
    with pytest.raises(PrivacyUnsupportedError, match="fine-tune"):
        dp_train(_Memorised(), x, y, **kwargs)  # type: ignore[arg-type]
    assert dp_train(_Memorised(), x, y, fine_tune=True, **kwargs).steps > 0  # type: ignore[arg-type]


@pytest.mark.timeout(120)
def test_public_pretraining_lifts_accuracy_and_is_recorded() -> None:
    """100 private rows at epsilon 0.3 teach a fresh model little; 1000 public rows of the same task
    (another sample, no row shared) pre-train it for free, and the facts say so."""
    private_x, private_y = _blobs(100, seed=1)
    test_x, test_y = _blobs(500, seed=2)
    public = PublicData(*_blobs(1000, seed=3), source="blobs seed 3", epochs=2, lr=1e-2)
    kw = {"epsilon": 0.3, "delta": 1e-3, "epochs": 4, "batch_size": 50, "accountant": "rdp"}
    alone = dp_train(_mlp(), private_x, private_y, **kw)  # type: ignore[arg-type]
    helped = dp_train(_mlp(), private_x, private_y, public_data=public, **kw)  # type: ignore[arg-type]

    def accuracy(m: torch.nn.Module) -> float:
        with torch.no_grad():
            return float((m(torch.from_numpy(test_x)).argmax(1).numpy() == test_y).mean())

    assert accuracy(helped.module) > 0.9
    assert accuracy(helped.module) > accuracy(alone.module) + 0.1
    assert helped.epsilon <= 0.3 * 1.001  # the private run's accounting is unchanged
    facts = helped.facts()
    assert facts["initialisation"] == "public pre-training"
    assert facts["public_pretraining"]["source"] == "blobs seed 3"
    assert facts["public_pretraining"]["rows"] == 1000
    assert "public" in facts["public_pretraining"]["privacy_cost"]
    assert "public_pretraining" not in alone.facts() and alone.facts()["initialisation"] == "random"


def test_dp_layers_freezes_the_pretrained_layers() -> None:
    public = PublicData(*_blobs(300, seed=3), epochs=1)
    kw = {
        "epsilon": 2.0,
        "delta": 1e-3,
        "epochs": 2,
        "batch_size": 50,
        "accountant": "rdp",
        "public_data": public,
    }
    a = dp_train(_mlp(), *_blobs(200, seed=1), dp_layers=1, **kw)  # type: ignore[arg-type]
    b = dp_train(_mlp(), *_blobs(200, seed=4), dp_layers=1, **kw)  # type: ignore[arg-type]
    c = dp_train(_mlp().eval(), *_blobs(200, seed=4), **kw)  # type: ignore[arg-type]  # eval mode is fine
    first = lambda r: r.module[0].weight.detach()  # noqa: E731
    last = lambda r: r.module[2].weight.detach()  # noqa: E731
    # frozen: the first layer depends on the public rows and the seed only, not on the private rows
    assert torch.equal(first(a), first(b)) and not torch.equal(last(a), last(b))
    assert not torch.equal(first(b), first(c))  # without dp_layers it trains privately too
    assert a.private_layers == ("2",) and a.facts()["private_layers"] == ["2"]
    with pytest.raises(InputError, match="dp_layers must be between 1 and 2"):
        dp_train(_mlp(), *_blobs(200), dp_layers=3, **kw)  # type: ignore[arg-type]


def test_public_data_sharing_private_rows_or_out_of_range_is_refused() -> None:
    x, y = _blobs(200)
    kw = {"epsilon": 1.0, "delta": 1e-3, "epochs": 1, "accountant": "rdp"}
    leaky = PublicData(np.r_[_blobs(100, seed=5)[0], x[:3]], np.r_[_blobs(100, seed=5)[1], y[:3]])
    with pytest.raises(InputError, match=r"3 public row.*also occur in the private training data"):
        dp_train(_mlp(), x, y, public_data=leaky, **kw)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="public data rows have shape"):
        dp_train(_mlp(), x, y, public_data=PublicData(x[:, :4] + 9, y), **kw)  # type: ignore[arg-type]
    lo, hi = float(x.min()), float(x.max())
    far = PublicData(_blobs(50, seed=6)[0] * 100, _blobs(50, seed=6)[1])
    with pytest.raises(InputError, match="public data lies outside the input range"):
        dp_train(_mlp(), x, y, public_data=far, input_range=(lo, hi), **kw)  # type: ignore[arg-type]

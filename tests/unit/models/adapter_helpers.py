"""Importable helpers for the adapter tests (``python:adapter_helpers:make_linear``)."""

from __future__ import annotations

import torch


class ProbaNet(torch.nn.Module):
    """Returns softmax probabilities, or raw scores when ``broken``: for output-validation tests."""

    def __init__(self, broken: bool = False) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.broken = broken

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.lin(x) * 10
        return z if self.broken else torch.softmax(z, dim=1)


def make_linear() -> torch.nn.Module:
    """A seeded 4-feature, 3-class linear classifier (importable as python:...:make_linear)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3))

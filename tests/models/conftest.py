"""Fixtures of the model tests; makes ``lobule_model_contract`` (the shared contract class) importable."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture(autouse=True)
def _one_thread_and_seed(one_torch_thread):
    """The machine is shared: one intra-op thread; a fixed seed so failures reproduce."""
    torch.manual_seed(0)

"""`lobule analyze --readers` and the analysis service the GUI calls default to one reader thread on
machines with 2 cores or fewer."""
from __future__ import annotations

import argparse
import os

import pytest

from lobule.inference import analysis_service
from lobule.inference.cli import analyze


@pytest.mark.parametrize("cores, readers", [(1, 1), (2, 1), (None, 1), (4, 2), (16, 2)])
def test_reader_default_follows_the_core_count(monkeypatch, cores, readers):
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert analysis_service.default_readers() == readers
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers()
    analyze.register(commands, None)
    args = parser.parse_args(["analyze", "slide.svs", "--out", "out"])
    assert args.readers == readers
    assert parser.parse_args(["analyze", "slide.svs", "--out", "out", "--readers", "3"]).readers == 3

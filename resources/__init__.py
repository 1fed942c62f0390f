"""Bundled resources: class tables, colour maps, model cards and weights, the demo slide.

Only data and tiny accessors live here (no torch, no Qt).
"""
from __future__ import annotations

from pathlib import Path

RESOURCES_DIR = Path(__file__).resolve().parent
MODELS_DIR = RESOURCES_DIR / "models"
DEMO_SLIDE = RESOURCES_DIR / "demo" / "CMU-1-Small-Region.svs"

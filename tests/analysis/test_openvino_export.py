"""OpenVINO export of a model: quiet for the user (no tracer warnings) and faithful."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

ov = pytest.importorskip("openvino")
torch = pytest.importorskip("torch")


def test_export_is_quiet_and_matches_torch(tmp_path):
    from lobule.inference.engine.runtime import export_openvino

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        xml = export_openvino(model, mean, std, 32, tmp_path / "ov")
    assert not [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]

    tiles = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    got = ov.Core().compile_model(str(xml), "CPU")(tiles)[0]
    x = (torch.from_numpy(tiles).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)

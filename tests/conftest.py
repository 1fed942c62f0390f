"""Shared fixtures. Area-specific fixtures live in each test folder's own conftest.py."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("LOBULE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real data made by other people); tests using it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_slide() -> Path:
    """The bundled demo slide (real Aperio SVS, 2220x2967, one level, mpp 0.499)."""
    from lobule.resources import DEMO_SLIDE

    assert DEMO_SLIDE.is_file()
    return DEMO_SLIDE


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Keep tests away from the real user's settings and model folders."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.delenv("LOBULE_MODELS_DIR", raising=False)
    # commands run models in the fp32 reference runtime unless a test asks for another one
    monkeypatch.setenv("LOBULE_RUNTIME", "torch")
    monkeypatch.setenv("LOBULE_CACHE_DIR", str(home / ".cache" / "lobule"))


@pytest.fixture(scope="session")
def pyramid_tiff(tmp_path_factory) -> Path:
    """A synthetic H&E-like tiled JPEG pyramidal TIFF: 4096x3072 px, 4 levels (downsamples
    1, 2, 4, 8), 256 px tiles, mpp 0.5 in the resolution tags (OpenSlide and tiffslide both
    report it); pink parenchyma, purple nuclei, white round lipid holes, white margin.
    ``lobule.inference.slide.synthetic.render_he`` renders the same content for comparisons."""
    from lobule.inference.slide.synthetic import write_pyramid_tiff

    return write_pyramid_tiff(tmp_path_factory.mktemp("slides") / "pyramid.tif", size=(4096, 3072), mpp=0.5)


@pytest.fixture(scope="session")
def aperio_j2k_svs(tmp_path_factory) -> Path:
    """An Aperio-style SVS with JPEG 2000 tiles (compression 33003, YCbCr) and NO mpp in its
    ImageDescription: 2048x1536, a level at downsample 4, thumbnail, label and macro images.
    Content as ``render_he(..., slide_size=(2048, 1536), seed=1)``."""
    from lobule.inference.slide.synthetic import write_aperio_j2k_svs

    return write_aperio_j2k_svs(tmp_path_factory.mktemp("slides") / "j2k-no-mpp.svs", compression=33003, mpp=None)


@pytest.fixture
def shown(qtbot):
    """``shown(widget, size=(1200, 800))``: the widget added to qtbot, resized, shown and exposed."""

    def show(widget, size=(1200, 800)):
        qtbot.addWidget(widget)
        widget.resize(*size)
        widget.show()
        qtbot.waitExposed(widget)
        return widget

    return show


@pytest.fixture
def one_torch_thread():
    """One torch intra-op thread for the test (restored after): tiny models run fastest so, and on
    a shared 2-core machine more threads only spin. Folders of torch tests use it autouse."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

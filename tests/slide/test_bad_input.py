"""Every bad input gets a typed error with a one-line reason naming the file; never a crash."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from lobule.inference.errors import LobuleError, SlideError, UnsupportedFormatError
from lobule.inference.slide import open_slide


def _png(path, rng_seed=0):
    image = (np.random.default_rng(rng_seed).random((64, 80, 3)) * 255).astype(np.uint8)
    ok, data = cv2.imencode(".png", image)
    path.write_bytes(data.tobytes())
    return path


def _make(kind: str, tmp_path, demo_slide, pyramid_tiff):
    if kind == "missing":
        return tmp_path / "nowhere.svs"
    if kind == "directory":
        (tmp_path / "folder").mkdir()
        (tmp_path / "folder" / "notes.txt").write_text("no dicom here")
        return tmp_path / "folder"
    if kind == "empty":
        (tmp_path / "empty.svs").write_bytes(b"")
        return tmp_path / "empty.svs"
    if kind == "random bytes":
        path = tmp_path / "random.svs"
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
        return path
    if kind.startswith("truncated svs"):
        data = demo_slide.read_bytes()
        path = tmp_path / "truncated.svs"
        path.write_bytes(data[: int(len(data) * float(kind.split()[-1]))])
        return path
    if kind == "truncated tiff":
        data = pyramid_tiff.read_bytes()
        path = tmp_path / "truncated.tif"
        path.write_bytes(data[: len(data) // 2])
        return path
    if kind == "truncated png":
        data = _png(tmp_path / "full.png").read_bytes()
        path = tmp_path / "truncated.png"
        path.write_bytes(data[: len(data) // 2])
        return path
    if kind == "png renamed .svs":
        return _png(tmp_path / "image.svs")
    if kind == "jpeg renamed .ndpi":
        path = tmp_path / "image.ndpi"
        ok, data = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))
        path.write_bytes(data.tobytes())
        return path
    if kind == "pdf":
        (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n<<>>\nendobj\n" * 20)
        return tmp_path / "report.pdf"
    if kind == "zip":
        import zipfile

        with zipfile.ZipFile(tmp_path / "slides.zip", "w") as archive:
            archive.writestr("a.txt", "x")
        return tmp_path / "slides.zip"
    if kind == "text":
        (tmp_path / "notes.svs").write_text("just some text\n" * 10)
        return tmp_path / "notes.svs"
    raise AssertionError(kind)


CASES = {
    "missing": (SlideError, "no such file"),
    "directory": (SlideError, "folder"),
    "empty": (SlideError, "empty"),
    "random bytes": (UnsupportedFormatError, "not a slide or image format"),
    "truncated svs 0.02": (SlideError, "truncated"),
    "truncated svs 0.5": (SlideError, "truncated"),
    "truncated svs 0.95": (SlideError, "truncated"),
    "truncated tiff": (SlideError, "truncated"),
    "truncated png": (SlideError, "truncated"),
    "png renamed .svs": (UnsupportedFormatError, "PNG image"),
    "jpeg renamed .ndpi": (UnsupportedFormatError, "JPEG image"),
    "pdf": (UnsupportedFormatError, "PDF"),
    "zip": (UnsupportedFormatError, "ZIP"),
    "text": (UnsupportedFormatError, "not a slide or image format"),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_bad_input_has_one_line_typed_error(kind, tmp_path, demo_slide, pyramid_tiff):
    path = _make(kind, tmp_path, demo_slide, pyramid_tiff)
    error_type, words = CASES[kind]
    with pytest.raises(error_type) as info:
        open_slide(path)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400
    assert words in message
    assert path.name in message


def test_bad_input_prints_nothing(tmp_path, capfd, demo_slide):
    """tifffile's own warnings about broken files are not printed to the terminal."""
    path = tmp_path / "cut.svs"
    path.write_bytes(demo_slide.read_bytes()[:900_000])
    with pytest.raises(SlideError):
        open_slide(path)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_corrupt_tile_fails_that_read_only(tmp_path, pyramid_tiff):
    """Garbage in one tile's data: reading it raises SlideError, the rest stays readable."""
    import tifffile

    data = bytearray(pyramid_tiff.read_bytes())
    with tifffile.TiffFile(pyramid_tiff) as tif:
        page = tif.pages[0]
        index = 6 * (4096 // 256) + 8  # tile (8, 6) of level 0, inside the tissue
        offset, count = page.dataoffsets[index], page.databytecounts[index]
    data[offset : offset + count] = bytes(count)  # zeros: not a JPEG stream any more
    path = tmp_path / "corrupt.tif"
    path.write_bytes(bytes(data))
    with open_slide(path) as slide:
        with pytest.raises(SlideError, match="corrupt.tif"):
            slide.read_region((8 * 256 + 10, 6 * 256 + 10), 0, (64, 64))
        intact = slide.read_region((2 * 256, 6 * 256), 0, (256, 256))
        assert intact.std() > 10
        assert slide.read_region((8 * 256, 6 * 256), 3, (32, 32)).shape == (32, 32, 3)  # other level


def test_lobule_errors_are_the_only_exceptions(tmp_path):
    """A file of each leading byte pattern that looks like a format but is not one."""
    heads = [b"II*\x00", b"MM\x00*", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"GIF89a", b"II+\x00"]
    for number, head in enumerate(heads):
        path = tmp_path / f"fake{number}.svs"
        path.write_bytes(head + bytes(range(256)) * 8)
        with pytest.raises(LobuleError):
            open_slide(path)


def test_random_bytes_in_a_subprocess_never_crash(tmp_path):
    """Native decoders must not take the process down: run the open in a child process."""
    path = tmp_path / "noise.tif"
    rng = np.random.default_rng(7)
    path.write_bytes(b"II*\x00\x08\x00\x00\x00" + rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    code = (
        "import sys\nfrom lobule.inference.slide import open_slide\nfrom lobule.inference.errors import LobuleError\n"
        "try:\n    open_slide(sys.argv[1])\nexcept LobuleError as e:\n    print('ERR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ERR noise.tif") and out.stderr == ""


def test_dicom_that_is_not_a_slide(tmp_path):
    """A CT slice (whose DICOM preamble even looks like a TIFF header) and a folder of it."""
    import shutil

    import pydicom.data

    ct = Path(pydicom.data.get_testdata_file("CT_small.dcm"))
    shutil.copy(ct, tmp_path / "ct.dcm")
    for path in (tmp_path / "ct.dcm", tmp_path):
        with pytest.raises(UnsupportedFormatError, match="not a whole-slide image"):
            open_slide(path)

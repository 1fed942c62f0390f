"""Screenshot of a command's terminal output: runs it in a pseudo-terminal, emulates the screen
with pyte (cursor moves, line erases and colours as a terminal draws them, so live progress bars
show as a user sees them) and draws the screen into a PNG with Pillow.

    python packaging/term_png.py --out models.png [--size 120x32] [--text SCREEN.txt] [--mid MID.png [--mid-when TEXT]] -- CMD ARGS...

``--mid`` also saves the screen as it was halfway through the run, or halfway through the time
TEXT was on the screen (``--mid-when ETA``: a progress bar mid-run). The
command's exit status is this script's exit status. A packaging tool, not part of the app: it
needs pyte (the ``packaging`` extra) and a monospace TrueType font (DejaVu Sans Mono or Liberation
Mono; Pillow's bitmap font otherwise).
"""
from __future__ import annotations

import argparse
import copy
import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyte
from PIL import Image, ImageDraw, ImageFont

FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
         "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf")
BACKGROUND = (30, 30, 30)
FOREGROUND = (220, 220, 220)
# pyte's names of the 16 ANSI colours -> RGB (the VS Code dark terminal theme)
NAMED = {
    "black": (0, 0, 0), "red": (205, 49, 49), "green": (13, 188, 121), "brown": (229, 229, 16),
    "yellow": (229, 229, 16), "blue": (36, 114, 200), "magenta": (188, 63, 188), "cyan": (17, 168, 205),
    "white": (229, 229, 229), "brightblack": (102, 102, 102), "brightred": (241, 76, 76),
    "brightgreen": (35, 209, 139), "brightbrown": (245, 245, 67), "brightyellow": (245, 245, 67),
    "brightblue": (59, 142, 234), "brightmagenta": (214, 112, 214), "brightcyan": (41, 184, 219),
    "brightwhite": (229, 229, 229),
}


def _rgb(colour: str, default: tuple[int, int, int]) -> tuple[int, int, int]:
    if colour == "default":
        return default
    if colour in NAMED:
        return NAMED[colour]
    try:  # pyte gives 256-colour and truecolour as 6 hex digits
        return tuple(int(colour[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
    except ValueError:
        return default


def _font(size: int):
    for path in FONTS:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default()


def render(screen: pyte.Screen, out: Path, font_size: int = 15, buffer=None) -> None:
    """Draw ``screen`` (pyte, ``columns`` x ``lines`` cells; or a saved copy of its ``buffer``)
    into the PNG ``out`` (RGB, 8 bit)."""
    buffer = screen.buffer if buffer is None else buffer
    font = _font(font_size)
    left, top, right, bottom = font.getbbox("M")
    cell_w = max(1, round(font.getlength("M")))
    cell_h = round(font_size * 1.3)
    pad = 12
    image = Image.new("RGB", (screen.columns * cell_w + 2 * pad, screen.lines * cell_h + 2 * pad), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for y in range(screen.lines):
        row = buffer[y]
        for x in range(screen.columns):
            char = row[x]
            fg, bg = _rgb(char.fg, FOREGROUND), _rgb(char.bg, BACKGROUND)
            if char.reverse:
                fg, bg = bg, fg
            px, py = pad + x * cell_w, pad + y * cell_h
            if bg != BACKGROUND:
                draw.rectangle((px, py, px + cell_w - 1, py + cell_h - 1), fill=bg)
            if char.data.strip():
                draw.text((px, py + (cell_h - (bottom - top)) // 2 - top), char.data, font=font, fill=fg)
    tmp = out.with_name(out.name + ".tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="PNG of the screen when the command has ended")
    parser.add_argument("--size", default="120x32", help="terminal COLUMNSxROWS (120x32)")
    parser.add_argument("--text", type=Path, help="also write the final screen as plain text")
    parser.add_argument("--mid", type=Path, metavar="PNG", help="also save the screen as it was halfway through")
    parser.add_argument("--mid-when", metavar="TEXT", default="", help="--mid: halfway through the time TEXT showed")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (after --)")
    columns, rows = (int(v) for v in args.size.lower().split("x"))
    screen = pyte.Screen(columns, rows)
    stream = pyte.ByteStream(screen)

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = dict(os.environ, COLUMNS=str(columns), LINES=str(rows))
    process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    start, saved = time.monotonic(), []  # copies of the screen, one a second, for --mid
    while True:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the command closed the terminal
                data = b""
            if not data:
                break
            stream.feed(data)
        now = time.monotonic() - start
        if args.mid and (not saved or now - saved[-1][0] >= 1.0) and args.mid_when in "\n".join(screen.display):
            saved.append((now, copy.deepcopy(screen.buffer)))
    status = process.wait()
    os.close(master)
    render(screen, args.out)
    # frames still being drawn (the next frame differs): a progress bar left on screen when done is not mid-run
    text = [[[buffer[y][x].data for x in range(columns)] for y in range(rows)] for _, buffer in saved]
    saved = [frame for frame, this, after in zip(saved, text, text[1:]) if this != after]
    if args.mid and saved:
        render(screen, args.mid, buffer=saved[len(saved) // 2][1])
    if args.text:
        args.text.write_text("\n".join(line.rstrip() for line in screen.display).rstrip() + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())

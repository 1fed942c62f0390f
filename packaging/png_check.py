"""Does a screenshot show tissue? ``python3 png_check.py SHOT.png`` prints the share of strongly
coloured pixels (H&E pink and purple; the window's own greys and white do not count) and exits 1
when it is under 2 %. ``python3 png_check.py OVERLAY.png --overlay PLAIN.png`` instead checks that
at least 2 % of the pixels differ from the same view without the overlay. Standard library only,
so it runs with any python3 outside the app."""
import struct
import sys
import zlib


def read_png_rgb(path):
    """(width, height, rows of RGB bytes) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"{path}: expected an 8-bit RGB(A) non-interlaced PNG")
    channels = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(b"".join(idat)), width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        rows.append(bytes(line) if channels == 3 else bytes(b for j, b in enumerate(line) if j % 4 != 3))
        previous = line
    return width, height, rows


def coloured_share(path, step=4):
    width, height, rows = read_png_rgb(path)
    coloured = total = 0
    for row in rows[::step]:
        for x in range(0, width * 3, 3 * step):
            r, g, b = row[x], row[x + 1], row[x + 2]
            total += 1
            coloured += max(r, g, b) - min(r, g, b) > 40 and r > g  # eosin pink or haematoxylin purple
    return coloured / max(total, 1)


def changed_share(path, base, step=4):
    """Share of pixels of ``path`` that differ from the same-sized ``base`` by more than 30
    grey levels in some channel (an overlay drawn over the slide)."""
    width, height, rows = read_png_rgb(path)
    base_width, base_height, base_rows = read_png_rgb(base)
    if (width, height) != (base_width, base_height):
        raise ValueError(f"{path}: {width}x{height} pixels, but {base} has {base_width}x{base_height}")
    changed = total = 0
    for row, base_row in zip(rows[::step], base_rows[::step]):
        for x in range(0, width * 3, 3 * step):
            total += 1
            changed += max(abs(row[x + c] - base_row[x + c]) for c in range(3)) > 30
    return changed / max(total, 1)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[2] == "--overlay":  # png_check.py OVERLAY.png --overlay PLAIN.png
        share = changed_share(sys.argv[1], sys.argv[3])
        print(f"{sys.argv[1]}: {100 * share:.1f} % of pixels differ from {sys.argv[3]}")
    else:
        share = coloured_share(sys.argv[1])
        print(f"{sys.argv[1]}: {100 * share:.1f} % H&E-coloured pixels")
    sys.exit(0 if share >= 0.02 else 1)

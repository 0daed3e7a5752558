#!/usr/bin/env python3
"""Writes the app icons (www/icons/icon-192.png, icon-512.png): bars of falling entropy on the
accent colour. Run once; the PNGs are committed. Pure Python (zlib), no imaging library."""

import os
import struct
import zlib

BG = (0x2E, 0x6B, 0xD6)
BARS = [(0x6F, 0xCF, 0x6F), (0xF2, 0xD1, 0x4B), (0xF0, 0x7B, 0x6B), (0xB5, 0x8C, 0xF0)]
HEIGHTS = [0.62, 0.45, 0.30, 0.18]


def pixel(x, y, n):
    u, v = x / n, y / n
    for i, (h, c) in enumerate(zip(HEIGHTS, BARS)):
        x0 = 0.18 + i * 0.17
        if x0 <= u < x0 + 0.13 and 0.82 - h <= v < 0.82:
            return c
    return BG


def png(n):
    rows = b"".join(b"\x00" + bytes(c for x in range(n) for c in pixel(x, y, n)) for y in range(n))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", n, n, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


if __name__ == "__main__":
    out = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "www", "icons")
    os.makedirs(out, exist_ok=True)
    for n in (192, 512):
        with open(os.path.join(out, f"icon-{n}.png"), "wb") as f:
            f.write(png(n))

"""How many bytes a video's container declares, to tell a file cut short (downloads and
copies that stopped part-way): ISO BMFF (MP4, MOV), RIFF (AVI) and Matroska/WebM."""

from __future__ import annotations

import os
import struct

# First box of an ISO base media file (MP4, MOV, M4V, 3GP).
_BMFF_FIRST = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"styp"}
_EBML_ID, _SEGMENT_ID = 0x1A45DFA3, 0x18538067


def _bmff_end(f, size: int) -> int | None:
    """Where the top-level boxes end as declared (past ``size`` at the first box that runs
    past the end of the file); None if not ISO BMFF or a box runs to the end undeclared."""
    off = 0
    while off + 8 <= size:
        f.seek(off)
        head = f.read(16)
        box_size, kind = struct.unpack(">I4s", head[:8])
        if off == 0 and kind not in _BMFF_FIRST:
            return None
        if box_size == 1:  # 64-bit size follows the type
            if len(head) < 16:
                return off + 16
            box_size = struct.unpack(">Q", head[8:16])[0]
        if box_size < 8:  # 0: "runs to the end of the file", nothing to check; < 8: junk
            return None
        off += box_size
    return off


def _riff_end(f, size: int) -> int | None:
    """End of the last RIFF chunk (AVI; OpenDML files chain several), as declared."""
    off, end = 0, None
    while off + 8 <= size:
        f.seek(off)
        tag, n = struct.unpack("<4sI", f.read(8))
        if tag != b"RIFF":
            break
        end = off + 8 + n
        off = end + (n & 1)  # chunks are padded to even sizes
    return end


def _ebml_number(data: bytes, pos: int, keep_marker: bool) -> tuple[int | None, int]:
    """An EBML variable-length number at ``pos``: (value, next pos); None value if unknown."""
    if pos >= len(data) or data[pos] == 0:
        return None, len(data) + 1
    length = 9 - data[pos].bit_length()
    raw = int.from_bytes(data[pos : pos + length], "big")
    if keep_marker:  # element IDs keep their length marker
        return raw, pos + length
    value = raw & ((1 << (7 * length)) - 1)
    return (None if value == (1 << (7 * length)) - 1 else value), pos + length


def _matroska_end(f, size: int) -> int | None:
    """End of the Segment (Matroska, WebM) as declared; None if not Matroska or unknown."""
    f.seek(0)
    data = f.read(4096)
    ident, pos = _ebml_number(data, 0, keep_marker=True)
    if ident != _EBML_ID:
        return None
    header_size, pos = _ebml_number(data, pos, keep_marker=False)
    if header_size is None:
        return None
    ident, pos = _ebml_number(data, pos + header_size, keep_marker=True)
    if ident != _SEGMENT_ID:
        return None
    segment_size, pos = _ebml_number(data, pos, keep_marker=False)
    return None if segment_size is None or pos > len(data) else pos + segment_size


def container_shortfall(path: str) -> tuple[int, int] | None:
    """(file size, end of the first top-level box, chunk or segment that runs past it) when a
    local MP4/MOV, AVI or Matroska file is shorter than its own structure says (cut short);
    None when it is whole, or its container is none of these or does not declare sizes."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        for container_end in (_bmff_end, _riff_end, _matroska_end):
            declared = container_end(f, size)
            if declared is not None:
                return (size, declared) if declared > size else None
    return None

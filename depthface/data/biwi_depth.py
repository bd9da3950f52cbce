"""Biwi's depth files: the run-length-encoded ``frame_XXXXX_depth.bin`` codec.

``frame_XXXXX_depth.bin`` (little-endian, the authors' ``loadDepthImageCompressed``): ``int32 width``,
``int32 height``, then blocks ``(int32 n_empty, int32 n_full, int16[n_full] depth_mm)`` until
``width * height`` pixels are filled, row-major; the ``n_empty`` pixels are 0 (no measurement).
The decoder walks the block headers with a small numba kernel (a plain-Python walk is the fallback
and the reference) and copies all depth runs with one vectorised numpy gather. It rejects, with a
one-line :class:`InputError` naming the file, a bad header, a negative count, a block that overruns
the image, a file that ends early and, when ``strict``, bytes left after the last block; so a frame
is never returned with a size other than the header's. The rest of the Biwi layout (poses, masks,
calibration, the dataset reader) is :mod:`depthface.data.biwi`.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from depthface.data.frames import depth_to_uint16
from depthface.errors import InputError
from depthface.files import file_problem
from depthface.geometry.camera import validate_depth

__all__ = ["MAX_SIDE", "MAX_PIXELS", "decode_biwi_depth", "encode_biwi_depth", "read_biwi_depth", "write_biwi_depth"]

#: Largest accepted image side and pixel count in a ``.bin`` header (guards against corrupt headers).
MAX_SIDE: int = 8192
MAX_PIXELS: int = 1 << 24

_INT16_MAX = 32767
#: largest .bin read: the header, and one block of two int32 counts per pixel pair, all pixels measured
_MAX_BIN_BYTES = 8 + MAX_PIXELS * 6


def _walk_python(buf: bytes, n: int) -> tuple[int, int, int, int, int, list[tuple[int, int, int]]]:
    """Walk the block headers (plain Python). See :func:`_walk_numba` for the returned status."""
    size = len(buf)
    unpack = struct.Struct("<ii").unpack_from
    pos, p = 8, 0
    runs: list[tuple[int, int, int]] = []
    while p < n:
        if pos + 8 > size:
            return _TRUNCATED_BLOCK, pos, p, 0, 0, runs
        n_empty, n_full = unpack(buf, pos)
        if n_empty < 0 or n_full < 0:
            return _NEGATIVE, pos, p, n_empty, n_full, runs
        if p + n_empty + n_full > n:
            return _OVERRUN, pos, p, n_empty, n_full, runs
        if n_full:
            if pos + 8 + 2 * n_full > size:
                return _TRUNCATED_RUN, pos + 8, p, n_empty, n_full, runs
            runs.append((p + n_empty, pos + 8, n_full))
        pos += 8 + 2 * n_full
        p += n_empty + n_full
    return _OK, pos, p, 0, 0, runs


def _walk_numba_impl(buf: np.ndarray, n: int, runs: np.ndarray):  # pragma: no cover - compiled
    """Walk the block headers of ``buf`` (uint8) for an image of ``n`` pixels.

    Fills ``runs[k] = (destination pixel, source byte offset, n_full)`` for the non-empty runs and
    returns ``(status, byte position, pixels done, n_empty, n_full, number of runs)``; on an error the
    position and counts are those of the offending block.
    """
    size = buf.shape[0]
    pos = 8
    p = 0
    k = 0
    while p < n:
        if pos + 8 > size:
            return 1, pos, p, 0, 0, k
        a = (np.int64(buf[pos]) | (np.int64(buf[pos + 1]) << 8) | (np.int64(buf[pos + 2]) << 16)
             | (np.int64(buf[pos + 3]) << 24))
        b = (np.int64(buf[pos + 4]) | (np.int64(buf[pos + 5]) << 8) | (np.int64(buf[pos + 6]) << 16)
             | (np.int64(buf[pos + 7]) << 24))
        if a >= 2147483648:
            a -= 4294967296
        if b >= 2147483648:
            b -= 4294967296
        if a < 0 or b < 0:
            return 2, pos, p, a, b, k
        if p + a + b > n:
            return 3, pos, p, a, b, k
        if b > 0:
            if pos + 8 + 2 * b > size:
                return 4, pos + 8, p, a, b, k
            runs[k, 0] = p + a
            runs[k, 1] = pos + 8
            runs[k, 2] = b
            k += 1
        pos += 8 + 2 * b
        p += a + b
    return 0, pos, p, 0, 0, k


_OK, _TRUNCATED_BLOCK, _NEGATIVE, _OVERRUN, _TRUNCATED_RUN = 0, 1, 2, 3, 4

try:  # numba is a declared dependency; the plain-Python walk is the fallback (and the reference in tests)
    import numba as _numba

    _walk_numba = _numba.njit(cache=True, nogil=True)(_walk_numba_impl)
except ImportError:  # pragma: no cover
    _walk_numba = None


def _walk(buf: bytes, n: int, use_numba: bool) -> tuple[int, int, int, int, int, np.ndarray]:
    """Walk the blocks with numba when available (else Python); returns status, position, pixels done,
    the offending counts, and the ``(K, 3)`` int64 runs table."""
    if use_numba and _walk_numba is not None:
        arr = np.frombuffer(buf, dtype=np.uint8)
        runs = np.empty((max((len(buf) - 8) // 8, 0), 3), dtype=np.int64)  # at most one run per 8 bytes
        status, pos, p, a, b, k = _walk_numba(arr, n, runs)
        return int(status), int(pos), int(p), int(a), int(b), runs[:k]
    status, pos, p, a, b, runs_list = _walk_python(buf, n)
    return status, pos, p, a, b, np.asarray(runs_list, dtype=np.int64).reshape(-1, 3)


def _parse_blocks(buf: bytes, source: str | Path | None, strict: bool,
                  use_numba: bool = True) -> tuple[int, int, np.ndarray]:
    """Validate the header and walk the RLE blocks without allocating the image.

    Returns:
        ``(width, height, runs)`` with ``runs`` an ``(K, 3)`` int64 array of
        ``(destination pixel, source byte offset, n_full)`` for every non-empty depth run.
    """
    if len(buf) < 8:
        raise InputError(f"truncated depth file: {len(buf)} bytes, the header alone needs 8", source)
    width, height = struct.unpack_from("<ii", buf, 0)
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE and width * height <= MAX_PIXELS):
        raise InputError(f"bad depth header: width {width}, height {height} (expected positive sizes, "
                         f"at most {MAX_SIDE} per side and {MAX_PIXELS} pixels)", source)
    n = width * height
    size = len(buf)
    status, pos, p, n_empty, n_full, runs = _walk(buf, n, use_numba)
    if status == _TRUNCATED_BLOCK:
        raise InputError(f"truncated depth file: it ends after {p} of {n} pixels ({width}x{height})", source)
    if status == _NEGATIVE:
        raise InputError(f"corrupt run-length block at byte {pos}: negative count "
                         f"({n_empty} empty, {n_full} full)", source)
    if status == _OVERRUN:
        raise InputError(f"corrupt run-length block at byte {pos}: it overruns the {width}x{height} image "
                         f"({p} + {n_empty} + {n_full} > {n} pixels)", source)
    if status == _TRUNCATED_RUN:
        raise InputError(f"truncated depth file: a run of {n_full} pixels at byte {pos} needs "
                         f"{2 * n_full} bytes, {size - pos} left", source)
    if strict and pos != size:
        raise InputError(f"{size - pos} unexpected bytes after the last run-length block "
                         f"(image {width}x{height} complete at byte {pos})", source)
    return width, height, runs


def decode_biwi_depth(buf: bytes, source: str | Path | None = None, strict: bool = True,
                      use_numba: bool = True) -> np.ndarray:
    """Decode the bytes of a Biwi ``frame_XXXXX_depth.bin``.

    Args:
        buf: the file's bytes.
        source: file name for error messages.
        strict: also reject bytes after the last block (the authors' reader ignores them).
        use_numba: walk the block headers with the numba kernel (same results as the Python walk).

    Returns:
        ``(H, W)`` int16 depth in mm exactly as stored (0 = no measurement), ``H, W`` from the header.

    Raises:
        InputError: bad header size, negative or overrunning counts, truncation, trailing bytes.
    """
    width, height, runs = _parse_blocks(buf, source, strict, use_numba)
    out = np.zeros(width * height, dtype=np.int16)
    if len(runs):
        dst, src, cnt = runs[:, 0], runs[:, 1], runs[:, 2]
        total = int(cnt.sum())
        # position k of run r: destination dst_r + k, source int16 word src_r / 2 + k (offsets are even)
        offsets = np.repeat(np.cumsum(cnt) - cnt, cnt)
        k = np.arange(total, dtype=np.int64) - offsets
        words = np.frombuffer(buf, dtype="<i2", count=len(buf) // 2)
        out[np.repeat(dst, cnt) + k] = words[np.repeat(src // 2, cnt) + k]
    return out.reshape(height, width)


def encode_biwi_depth(depth: np.ndarray) -> bytes:
    """Run-length encode depth in Biwi's ``.bin`` format (the inverse of :func:`decode_biwi_depth`).

    Args:
        depth: ``(H, W)`` depth in mm (integers, or floats rounded to the nearest mm) in ``[0, 32767]``;
            0 = no measurement.

    Returns:
        The file's bytes: header, then alternating (empty, full) runs; a trailing empty run is
        written as a block with ``n_full = 0``.
    """
    d = depth_to_uint16(depth, max_value=_INT16_MAX, what="Biwi depth").astype("<i2")
    h, w = d.shape
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE and w * h <= MAX_PIXELS):
        raise InputError(f"cannot encode a {w}x{h} depth image (at most {MAX_SIDE} per side, {MAX_PIXELS} pixels)")
    flat = d.reshape(-1)
    valid = flat > 0
    # run boundaries, then runs alternate empty/full starting with an (possibly zero-length) empty run
    bounds = np.concatenate(([0], np.flatnonzero(valid[1:] != valid[:-1]) + 1, [flat.size]))
    lengths = np.diff(bounds)
    if valid[0]:
        lengths = np.concatenate(([0], lengths))
    if len(lengths) % 2:
        lengths = np.concatenate((lengths, [0]))
    empties, fulls = lengths[0::2], lengths[1::2]
    full_starts = np.cumsum(empties) + np.concatenate(([0], np.cumsum(fulls)[:-1]))
    parts = [struct.pack("<ii", w, h)]
    for n_empty, n_full, start in zip(empties.tolist(), fulls.tolist(), full_starts.tolist(), strict=True):
        parts.append(struct.pack("<ii", n_empty, n_full))
        parts.append(flat[start:start + n_full].tobytes())
    return b"".join(parts)


def read_biwi_depth(path: str | Path, strict: bool = True) -> np.ndarray:
    """Read a Biwi ``frame_XXXXX_depth.bin``.

    Returns:
        ``(H, W)`` float32 depth in mm, 0 = no measurement.
    """
    path = Path(path)
    problem = file_problem(path, max_bytes=_MAX_BIN_BYTES)
    if problem is not None:
        raise InputError(problem, path)
    try:
        buf = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read depth file: {e.strerror}", path) from None
    return validate_depth(decode_biwi_depth(buf, path, strict), path, min_valid=0)


def write_biwi_depth(path: str | Path, depth: np.ndarray) -> Path:
    """Write ``(H, W)`` depth in mm as a Biwi ``.bin`` (see :func:`encode_biwi_depth`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_biwi_depth(depth))
    return path

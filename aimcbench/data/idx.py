"""Reader and writer for the IDX file format used by MNIST and Fashion-MNIST.

An IDX file starts with a 4-byte magic number ``0x00 0x00 <dtype code> <ndim>`` followed by ``ndim``
big-endian uint32 dimension sizes and then the data in C order (big-endian for multi-byte types).
Files may be gzip-compressed; a ``.gz`` suffix or the gzip magic bytes select decompression.
"""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np

from .errors import DataError

# IDX type code -> numpy dtype (big-endian where it matters).
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: str) -> bytes:
    """Return the (decompressed) content of ``path``."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as err:
        raise DataError(f"cannot read IDX file {path}: {err.strerror or err}") from err
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, ValueError) as err:
            raise DataError(f"corrupt gzip IDX file {path}: {err}") from err
    if path.endswith(".gz"):
        raise DataError(f"corrupt IDX file {path}: name ends in .gz but content is not gzip")
    return raw


def read_idx(path: str | os.PathLike, expect_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (plain or gzip) into a numpy array.

    ``expect_ndim`` (1 for labels, 3 for images) is checked against the header so that swapped or
    truncated files fail early. Any problem raises :class:`DataError` naming the file.
    """
    path = os.fspath(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"corrupt IDX file {path}: only {len(data)} bytes, no header")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise DataError(
            f"corrupt IDX file {path}: bad magic number 0x{data[:4].hex()} "
            "(expected 0x0000 <type 08|09|0b|0c|0d|0e> <ndim>)"
        )
    if expect_ndim is not None and ndim != expect_ndim:
        raise DataError(f"corrupt IDX file {path}: has {ndim} dimensions, expected {expect_ndim}")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"corrupt IDX file {path}: header truncated")
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    payload = len(data) - header_len
    if payload != expected:
        raise DataError(
            f"corrupt IDX file {path}: header says {dims} ({expected} data bytes) but file has {payload}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    # Native byte order and a writable copy, so callers can use it freely with torch.
    return arr.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``). Used by tests."""
    array = np.asarray(array)
    codes = {v.newbyteorder("="): k for k, v in _IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"write_idx: unsupported dtype {array.dtype}")
    code = codes[native]
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    body = array.astype(_IDX_DTYPES[code], copy=False).tobytes()
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(header + body)

"""The protobuf wire format, written and read by hand (the ``protobuf`` package is not needed).

What it does: the few pieces of the wire format that SentencePiece model files need:
:func:`varint`, one field of each wire type used (:func:`field` length-delimited,
:func:`int_field` varint, :func:`float_field` 32-bit float), and a reader that walks the
fields of a message (:func:`read_varint`, :func:`fields`). Used by
:mod:`hypertok.core.engine` (the vocabulary as a ``ModelProto``),
:mod:`hypertok.registry.spm` (the lossless patch of a ``.model`` file) and
:mod:`hypertok.adapt.gguf_import` (a ``tokenizer.model`` rebuilt from a GGUF file).

What it does not do: no schema, no wire types 3 and 4 (groups), no negative numbers (a
caller writes int32 ``-1`` as ``(1 << 64) - 1``). One home since issue 23.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator


def varint(n: int) -> bytes:
    """A non-negative integer as a protobuf varint.

    >>> varint(1), varint(300)
    (b'\\x01', b'\\xac\\x02')
    """
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if not n:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def field(number: int, data: bytes) -> bytes:
    """Field ``number`` of wire type 2 (length-delimited: bytes, a string, a message)."""
    return varint(number << 3 | 2) + varint(len(data)) + data


def int_field(number: int, n: int) -> bytes:
    """Field ``number`` of wire type 0 (a varint: an integer, an enum, a bool)."""
    return varint(number << 3) + varint(n)


def float_field(number: int, x: float) -> bytes:
    """Field ``number`` of wire type 5 (a 32-bit float, little-endian)."""
    return varint(number << 3 | 5) + struct.pack("<f", x)


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``buf[pos:]`` and the position after it.

    >>> read_varint(b'\\xac\\x02', 0)
    (300, 2)
    """
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes) -> Iterator[tuple[int, int, bytes, int | bytes]]:
    """Yield (field_number, wire_type, raw_bytes_of_whole_field, payload) of a protobuf message.

    >>> list(fields(int_field(3, 7) + field(1, b"ab")))
    [(3, 0, b'\\x18\\x07', 7), (1, 2, b'\\n\\x02ab', b'ab')]
    """
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = read_varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            payload, pos = read_varint(buf, pos)
        elif wt == 1:
            payload = buf[pos:pos + 8]
            pos += 8
        elif wt == 2:
            n, pos = read_varint(buf, pos)
            payload = buf[pos:pos + n]
            pos += n
        elif wt == 5:
            payload = buf[pos:pos + 4]
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wt}")
        yield num, wt, buf[start:pos], payload

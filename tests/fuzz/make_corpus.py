#!/usr/bin/env python3
"""Writes the committed seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

Each seed is a valid file of the format or a regression input for a defect the readers once had
(gzip cut in its trailer, trailing garbage, a decompression bomb, overflowing or empty IDX
headers, non-finite or out-of-range checkpoints), or a malformed pair file. Run from anywhere: python3 tests/fuzz/make_corpus.py
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gzip(raw):
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return c.compress(raw) + c.flush()


def idx(dims, data):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


images = idx([3, 2, 2], [(i * 37 + 11) % 256 for i in range(12)])
labels = idx([5], [0, 1, 2, 3, 4])

write("idx_plain", "images_3x2x2", images)
write("idx_plain", "labels_5", labels)
write("idx_plain", "regression_4e9_empty_images", idx([4000000000, 0, 0], []))
write("idx_plain", "regression_overflowing_dims", bytes([0, 0, 8, 3]) + b"\xff" * 12)
write("idx_plain", "regression_truncated_header", images[:9])
write("idx_plain", "regression_trailing_byte", images + b"\x07")

gz = gzip(images)
write("idx_gzip", "images_3x2x2.gz", gz)
write("idx_gzip", "labels_5.gz", gzip(labels))
write("idx_gzip", "regression_cut_in_trailer.gz", gz[:-3])
write("idx_gzip", "regression_trailing_garbage.gz", gz + b"junk")
write("idx_gzip", "regression_second_member.gz", gz + gz)
write("idx_gzip", "regression_bomb.gz", gzip(idx([10], []) + bytes(1 << 20)))
write("idx_gzip", "regression_claims_too_much.gz", gzip(bytes([0, 0, 8, 2]) + b"\x7f\xff\xff\xff" * 2))
flipped = bytearray(gz)
flipped[len(gz) // 2] ^= 0x10
write("idx_gzip", "regression_bit_flip.gz", bytes(flipped))


def fnv1a(b):
    h = 1469598103934665603
    for x in b:
        h = ((h ^ x) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def checkpoint(scalar, params, opt_state=(), extra=(), step=3, opt_step=3, arch=b"test", optimizer=b"nn::AdamW", rng=b"5489",
               version=2):
    fmt = "<f" if scalar == 4 else "<d"

    def vec(v):
        return struct.pack("<Q", len(v)) + b"".join(struct.pack(fmt, x) for x in v)

    def text(s):
        return struct.pack("<Q", len(s)) + s

    body = b"FMDCKPT1" + struct.pack("<II", version, scalar) + text(arch)
    if version >= 2:
        body += text(optimizer)
    body += vec(params) + struct.pack("<Q", len(opt_state)) + b"".join(vec(v) for v in opt_state)
    body += struct.pack("<Q", opt_step) + struct.pack("<Q", len(extra)) + b"".join(vec(v) for v in extra)
    body += struct.pack("<Q", step) + text(rng)
    return body + struct.pack("<Q", fnv1a(body))


write("checkpoint", "float_adamw", checkpoint(4, [0.5, -1.0, 2.0], opt_state=([0.1] * 3, [0.2] * 3)))
write("checkpoint", "double_ema", checkpoint(8, [1.0, 2.0], extra=([1.5, 2.5],)))
write("checkpoint", "version1", checkpoint(8, [1.0], version=1))
write("checkpoint", "regression_nan_parameters", checkpoint(8, [1.0, float("nan")]))
write("checkpoint", "regression_inf_optimizer_state", checkpoint(4, [1.0], opt_state=([float("inf")],)))
write("checkpoint", "regression_step_2_63", checkpoint(8, [1.0], step=1 << 63))
good = checkpoint(8, [1.0, 2.0])
write("checkpoint", "regression_truncated", good[: len(good) // 2])
long_len = bytearray(good)
long_len[16:24] = struct.pack("<Q", 1 << 60)
body = bytes(long_len[:-8])
write("checkpoint", "regression_length_past_end", body + struct.pack("<Q", fnv1a(body)))


def pairs(scalar, dim, noise, data, magic=b"FMDPAIR1", version=1):
    fmt = "<f" if scalar == 4 else "<d"

    def vec(v):
        return struct.pack("<Q", len(v)) + b"".join(struct.pack(fmt, x) for x in v)

    body = magic + struct.pack("<II", version, scalar) + struct.pack("<QQ", dim, len(noise) // dim) + vec(noise) + vec(data)
    return body + struct.pack("<Q", fnv1a(body))


write("pairs", "float_2x3", pairs(4, 2, [0.1, -0.2, 0.3, 1.0, 2.0, -1.5], [1.0, 1.0, 2.0, 0.5, -3.0, 4.0]))
write("pairs", "double_1x2", pairs(8, 1, [0.5, -0.5], [2.0, 3.0]))
write("pairs", "regression_nan_data", pairs(8, 1, [0.5, -0.5], [2.0, float("nan")]))
write("pairs", "regression_shape_mismatch", pairs(4, 2, [0.1, -0.2, 0.3, 1.0], [1.0, 1.0]))
huge = bytearray(pairs(4, 2, [0.1, -0.2], [1.0, 1.0]))
huge[16:24] = struct.pack("<Q", 1 << 62)
body = bytes(huge[:-8])
write("pairs", "regression_dims_past_end", body + struct.pack("<Q", fnv1a(body)))
good = pairs(8, 1, [0.5, -0.5], [2.0, 3.0])
write("pairs", "regression_truncated", good[:-5])

"""Runs npy_check (argv[1]) into a fresh directory (argv[2]) and checks every file it wrote with
NumPy: header layout of format 1.0, dtype, shape and exact values."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

program, root = sys.argv[1], Path(sys.argv[2])
shutil.rmtree(root, ignore_errors=True)
subprocess.run([program, str(root)], check=True)
d = root / "nested" / "dir"

f = np.array([[(r * 7 + c) * 0.25 - 1.0 for c in range(5)] for r in range(3)], dtype=np.float32)
m = np.array([[r + c / 7.0 for c in range(2)] for r in range(4)], dtype=np.float64)
expected = {
    "f32": f, "f64": m, "row_major": m, "block": f[1:3, 1:4], "transposed": m.T,
    "vec_f64": np.array([0.1, -2.5, 1e300, 3.0]), "vec_f32": np.array([0.5, 1.5], dtype=np.float32),
    "vec_i32": np.array([-1, 0, 7, 2147483647], dtype=np.int32), "vec_i64": np.array([-1, 1 << 40], dtype=np.int64),
    "empty": np.zeros(0), "stack": np.stack([f, 2 * f]),
}
failures = []
for name, want in expected.items():
    path = d / f"{name}.npy"
    raw = path.read_bytes()
    hlen = int.from_bytes(raw[8:10], "little")
    if raw[:6] != b"\x93NUMPY" or raw[6:8] != b"\x01\x00":
        failures.append(f"{name}: not a version 1.0 .npy file")
    if (10 + hlen) % 64 != 0 or raw[10 + hlen - 1:10 + hlen] != b"\n":
        failures.append(f"{name}: header of {hlen} bytes not padded to 64 with a final newline")
    got = np.load(path, allow_pickle=False)
    if got.dtype != want.dtype.newbyteorder("<") or got.shape != want.shape or not np.array_equal(got, want):
        failures.append(f"{name}: got {got.dtype} {got.shape}\n{got}\nwant {want.dtype} {want.shape}\n{want}")

info = json.loads((d / "info.json").read_text())
want_info = {"pi": 3.141592653589793, "n": 42, "count": 7, "flag": True, "title": '1 NFE, "filled" 0.85\\',
             "labels": ["T-shirt", "Boot"], "values": [1.5, -0.25], "nfe": [1, 2, 4]}
if info != want_info:
    failures.append(f"info.json: got {info}, want {want_info}")

print("\n".join(failures) if failures else f"npy round trip: {len(expected)} arrays and info.json load back exactly")
sys.exit(1 if failures else 0)

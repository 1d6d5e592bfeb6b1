#!/usr/bin/env python3
"""safetensors files between PyTorch and fmd, for the seed notebook's model (NotebookMLP).

Run with Debian's PyTorch (apt-get install -y python3-torch); Debian has no python3-safetensors,
so the format is written and read here with struct + json (same layout as the safetensors package:
8-byte little-endian header length, JSON header, row-major little-endian data).

    /usr/bin/python3 scripts/torch/safetensors_roundtrip.py fixture [--dir tests/fixtures]
        writes the committed test fixture: a width-16, depth-2 notebook model (torch.manual_seed(0)
        init) as F32, BF16 and F16 weights, and notebook_w16_d2_io.safetensors with a fixed input
        batch, PyTorch's float64 forward for each weight file, 4 Euler steps of the F32 model, and
        F16 / BF16 special values as PyTorch converts them.
    /usr/bin/python3 scripts/torch/safetensors_roundtrip.py check --dir DIR
        reads what fmd wrote into DIR (ctest io.safetensors_export: fmd_mlp.safetensors, an fmd MLP
        saved with fmd::io::save_mlp, and fmd_io.safetensors, a batch and fmd's forward on it), loads
        the weights into NotebookMLP (load_state_dict, strict) and compares the forward to 1e-5; then
        writes the state dict back from PyTorch and checks it reads into the same values.
    /usr/bin/python3 scripts/torch/safetensors_roundtrip.py export --out model.safetensors [--width 512 --depth 5 --seed 0]
        a PyTorch-initialized notebook model for fmd::io::load_mlp (MLPConfig{.dim = 2, .width, .depth}).

PyTorch's forward runs in float64: its float32 time embedding forms t*10000 in float32 and is off
by about 1e-3 rad (fmd forms the angles in double), so float64 is the reference for both.
"""
import argparse
import json
import math
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchmarks", "compare"))
from notebook_model import NotebookMLP  # noqa: E402

DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}
NAMES = {v: k for k, v in DTYPES.items()}


def save_file(path, tensors, metadata=None):
    """Writes {name: tensor} as safetensors: header padded with spaces to 8 bytes, data by name."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""  # little-endian host (x86, arm)
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_file(path):
    """Reads a safetensors file: ({name: tensor}, metadata). Checks the header and the tiling."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: truncated")
    (n,) = struct.unpack("<Q", data[:8])
    if n > 100_000_000 or 8 + n > len(data):
        raise ValueError(f"{path}: header length {n} beyond the file")
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", {})
    buf = data[8 + n:]
    tensors, spans = {}, []
    for name, info in header.items():
        dtype = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        shape = info["shape"]
        count = math.prod(shape)
        if (end - begin) != count * torch.tensor([], dtype=dtype).element_size():
            raise ValueError(f"{path}: tensor '{name}': offsets do not match shape and dtype")
        spans.append((begin, end, name))
        raw = bytearray(buf[begin:end])
        t = torch.frombuffer(raw, dtype=dtype) if count else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(shape)
    at = 0
    for begin, end, name in sorted(spans):
        if begin != at:
            raise ValueError(f"{path}: tensor '{name}': gap or overlap at byte {begin}")
        at = end
    if at != len(buf):
        raise ValueError(f"{path}: {len(buf) - at} bytes after the last tensor")
    return tensors, metadata


def notebook_model(width, depth, dim=2):
    return NotebookMLP(channels_data=dim, layers=depth, channels=width, channels_t=width)


def config_of(state, metadata, path):
    """(dim, width, depth, channels_t) of a notebook model's state dict; ValueError naming what an
    fmd MLP has and NotebookMLP cannot express (class embedding, second time, SiLU, Fourier or
    rescaled time features, out_dim != dim)."""
    extra = sorted(k for k in state if k.startswith(("class_embedding.", "interval_projection.")))
    if extra:
        raise ValueError(f"{path}: {', '.join(extra)}: NotebookMLP has no class embedding or second time input")
    width, dim = state["in_projection.weight"].shape
    channels_t = state["t_projection.weight"].shape[1]
    if state["out_projection.weight"].shape[0] != dim:
        raise ValueError(f"{path}: out_projection.weight: NotebookMLP needs out_dim == dim ({dim})")
    described = metadata.get("fmd.mlp")
    if described is not None:
        notebook_time = f"time=sinusoidal(channels={channels_t}, scale=10000, max_period=10000)"
        for needed in ("activation=relu", notebook_time):
            if needed not in described:
                raise ValueError(f"{path}: metadata fmd.mlp = {described}: NotebookMLP needs {needed}")
    depth = sum(1 for k in state if k.startswith("blocks.") and k.endswith(".0.weight"))
    return dim, width, depth, channels_t


def load_notebook(path):
    """A float64 NotebookMLP holding the weights of a safetensors file (any float dtype)."""
    tensors, metadata = load_file(path)
    dim, width, depth, channels_t = config_of(tensors, metadata, path)
    model = NotebookMLP(channels_data=dim, layers=depth, channels=width, channels_t=channels_t).double()
    model.load_state_dict({k: v.double() for k, v in tensors.items()}, strict=True)
    return model, metadata


def forward64(model, x, t):
    with torch.no_grad():
        return model.double()(x.double(), t.double())


def euler(model, x, steps):
    with torch.no_grad():
        for k in range(steps):
            t = torch.full((x.shape[0],), k / steps, dtype=torch.float64)
            x = x + (1.0 / steps) * model(x, t)
    return x


def fixture(args):
    os.makedirs(args.dir, exist_ok=True)
    torch.manual_seed(0)
    model = notebook_model(16, 2)  # float32, PyTorch's default init
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    meta = {"format": "pt", "model": "NotebookMLP(channels_data=2, layers=2, channels=16, channels_t=16)",
            "generator": "scripts/torch/safetensors_roundtrip.py fixture (torch %s)" % torch.__version__}
    x = torch.tensor([[0.5, -1.25], [1.5, 0.75], [-0.3, 0.2], [2.0, -2.0], [0.0, 0.1]], dtype=torch.float64)
    t = torch.tensor([0.0, 0.137, 0.5, 0.9, 1.0], dtype=torch.float64)
    io = {"x": x, "t": t}
    for tag, dtype in (("f32", torch.float32), ("bf16", torch.bfloat16), ("f16", torch.float16)):
        weights = {k: v.to(dtype) for k, v in state.items()}
        path = os.path.join(args.dir, f"notebook_w16_d2_{tag}.safetensors")
        save_file(path, weights, meta)
        reloaded, _ = load_notebook(path)  # the written file, read back: what fmd will see
        for k, v in weights.items():
            assert torch.equal(reloaded.state_dict()[k], v.double()), k
        io[f"out_{tag}"] = forward64(reloaded, x, t)
        if tag == "f32":
            io["euler_x0"] = x
            io["euler4_x1"] = euler(reloaded, x, 4)
    specials = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 65519.0, 65520.0, 1e6, 2.0 ** -14, 2.0 ** -24,
                             2.0 ** -25, 1.5 * 2.0 ** -25, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, 1.0 / 3.0,
                             3.0e38, 1.0e-40, float("inf"), float("-inf"), float("nan")], dtype=torch.float64)
    io["special_values"] = specials
    io["special_f16"] = specials.to(torch.float16)  # PyTorch rounds float64 straight to binary16
    io["special_bf16"] = specials.to(torch.float32).to(torch.bfloat16)  # and to bfloat16 through float
    io["special_values_f32"] = specials.to(torch.float32)
    save_file(os.path.join(args.dir, "notebook_w16_d2_io.safetensors"), io, meta)
    print("wrote", args.dir)


def check(args):
    weights = os.path.join(args.dir, "fmd_mlp.safetensors")
    io_path = os.path.join(args.dir, "fmd_io.safetensors")
    model, metadata = load_notebook(weights)
    io, _ = load_file(io_path)
    out = forward64(model, io["x"], io["t"])
    err = (out - io["fmd_out"]).abs().max().item()
    print(f"fmd weights in PyTorch ({metadata.get('fmd.mlp', '?')}): max |torch - fmd| forward = {err:.3g}")
    ok = err <= 1e-5
    # PyTorch's file of the same state dict reads back into the same values (its own reader).
    again = os.path.join(args.dir, "torch_mlp.safetensors")
    save_file(again, {k: v.float() for k, v in model.state_dict().items()}, {"format": "pt"})
    back, _ = load_notebook(again)
    same = all(torch.equal(back.state_dict()[k], v) for k, v in model.state_dict().items())
    print("PyTorch re-save reads back identically:", same)
    return 0 if ok and same else 1


def export(args):
    torch.manual_seed(args.seed)
    model = notebook_model(args.width, args.depth)
    dtype = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}[args.dtype]
    save_file(args.out, {k: v.to(dtype) for k, v in model.state_dict().items()}, {"format": "pt"})
    print("wrote", args.out)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fixture")
    p.add_argument("--dir", default=os.path.join(here, "..", "..", "tests", "fixtures"))
    p = sub.add_parser("check")
    p.add_argument("--dir", required=True)
    p = sub.add_parser("export")
    p.add_argument("--out", required=True)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--depth", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16", "F64"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.command == "fixture":
        fixture(args)
    elif args.command == "check":
        sys.exit(check(args))
    else:
        export(args)


if __name__ == "__main__":
    main()

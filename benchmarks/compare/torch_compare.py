"""PyTorch side of the side-by-side comparison (benchmarks/compare/run.sh drives both).

The seed's checkerboard workload in float32 on the CPU, written as the seed writes it:
    python torch_compare.py speed --threads N
    python torch_compare.py quality --threads N --file DATA --steps K --samples-out OUT --seed S
Prints "key value" lines like fmd_compare: per workload the median ms of 5 repetitions and, as
<key>_min / <key>_max, their spread. Point files: int64 rows, int64 cols, float32 column-major.
"""
import argparse
import ctypes
import time

import numpy as np
import torch

from notebook_model import NotebookMLP


def read_points(path):
    with open(path, "rb") as f:
        rows, cols = np.fromfile(f, dtype=np.int64, count=2)
        data = np.fromfile(f, dtype=np.float32, count=int(rows * cols))
    return torch.from_numpy(data.reshape(int(cols), int(rows)).copy())  # n x 2


def write_points(path, x):
    a = x.detach().numpy().astype(np.float32)  # n x 2 = column-major 2 x n
    with open(path, "wb") as f:
        np.array([a.shape[1], a.shape[0]], dtype=np.int64).tofile(f)
        a.tofile(f)


def time_ms(fn, warm, iters, reps):
    """(median, min, max) ms per call over reps timed runs of iters calls."""
    for _ in range(warm):
        fn()
    runs = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        runs.append((time.perf_counter() - t0) * 1e3 / iters)
    runs.sort()
    return runs[len(runs) // 2], runs[0], runs[-1]


def report(key, stats):
    for suffix, value in zip(("", "_min", "_max"), stats):
        print(f"{key}{suffix} {value:.4f}")


def openblas_core():
    """The OpenBLAS kernel torch's sgemm runs (OPENBLAS_CORETYPE can force an older one)."""
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
    except OSError:
        return "not-loaded"
    lib.openblas_get_corename.restype = ctypes.c_char_p
    return lib.openblas_get_corename().decode()


def make_train_step(model, data, batch):
    """The seed's training loop body."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        x1 = data[torch.randint(data.size(0), (batch,))]
        x0 = torch.randn_like(x1)
        t = torch.rand(batch)
        xt = (1 - t[:, None]) * x0 + t[:, None] * x1
        loss = ((model(xt, t) - (x1 - x0)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def euler_sample(model, x, steps):
    """Euler on t_k = k/n (theory.md §7.1), all columns at one time."""
    with torch.no_grad():
        for k in range(steps):
            t = torch.full((x.size(0),), k / steps)
            x = x + model(x, t) / steps
    return x


def speed():
    data = (torch.rand(10000, 2) * 8 - 4)
    for batch in (64, 256):
        step = make_train_step(NotebookMLP(), data, batch)
        report(f"train_b{batch}_ms", time_ms(step, 20, 100 if batch == 64 else 30, 5))
    model = NotebookMLP()
    x = torch.randn(1000, 2)
    t = torch.full((1000,), 0.5)

    def sample_step():
        with torch.no_grad():
            x.add_(model(x, t), alpha=1e-3)
    report("sample_n1000_ms", time_ms(sample_step, 10, 50, 5))
    for n in (64, 256, 1000):
        a, b = torch.rand(512, 512), torch.rand(512, n)
        ms = time_ms(lambda: torch.mm(a, b), 5, 200, 5)[0]
        print(f"sgemm_512x512x{n}_gflops {2 * 512 * 512 * n / (ms * 1e6):.2f}")


def quality(file, steps, samples_out, seed):
    torch.manual_seed(seed)
    data = read_points(file)
    model = NotebookMLP()
    step = make_train_step(model, data, 64)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    print(f"train_seconds {time.perf_counter() - t0:.2f}")
    x = euler_sample(model, torch.randn(1000, 2), 1000)
    write_points(samples_out, x)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["speed", "quality"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--file")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--samples-out")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    # Tiny gradients and Adam moments can become denormal; arithmetic on them takes the CPU's slow path.
    torch.set_flush_denormal(True)
    print(f"threads {torch.get_num_threads()}")
    print(f"torch_version {torch.__version__}")
    print(f"openblas_core {openblas_core()}")
    if a.mode == "speed":
        speed()
    else:
        quality(a.file, a.steps, a.samples_out, a.seed)


if __name__ == "__main__":
    main()

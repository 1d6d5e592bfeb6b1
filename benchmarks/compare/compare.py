"""Runs fmd_compare, libtorch_compare (LibTorch C++) and torch_compare.py (PyTorch) on the same
workloads and prints the times and ratios (fmd / competitor).

Called by run.sh. The programs run one at a time, never together, each with the stated thread
count, in R interleaved rounds (fmd, LibTorch, PyTorch, fmd, ...) so that a slow phase of the
machine hits every side. A cell is the median of the per-process medians, with the min–max over
every repetition of every round.

PyTorch and LibTorch run at their best: OpenBLAS picks its own kernels (this machine's environment
forces old ones), glibc keeps freed buffers, denormals are flushed, and for each thread count the
fastest of several thread configurations is kept per workload (all of them are printed).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# Multiply-adds per column of the notebook MLP (2→512, time 512→512, 5×512², 512→2).
MACS_TIME = 512 * 512
MACS_REST = 2 * 512 + 5 * 512 * 512 + 512 * 2
GOAL = 0.7  # fmd's time over the faster competitor's
# This machine's environment sets these to force OpenBLAS's Haswell kernels on an AVX-512 CPU;
# the competitors run without them, so OpenBLAS picks its best kernel itself.
FORCED_BLAS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# With glibc's defaults Torch's 1 MB gradient buffers go back to the system after every step and
# page-fault in again on the next (2.5x slower at batch 256); these keep them in the heap.
MALLOC = {"MALLOC_MMAP_THRESHOLD_": "1073741824", "MALLOC_TRIM_THRESHOLD_": "1073741824"}


def train_gflop(batch):
    # forward + weight gradients (each = forward) + input gradients of the hidden and output layers
    fwd = 2 * (MACS_TIME + MACS_REST) * batch
    return (2 * fwd + 2 * (5 * 512 * 512 + 512 * 2) * batch) * 1e-9


WORKLOADS = (("train_b64_ms", "training step, batch 64", train_gflop(64)),
             ("train_b256_ms", "training step, batch 256", train_gflop(256)),
             ("sample_n1000_ms", "Euler step, 1000 points", 2 * (MACS_TIME + MACS_REST * 1000) * 1e-9))
# fmd's sampling-only snapshots (nn::FrozenMLP, where fmd_compare has oneDNN): key, the competitors'
# row they are compared with, label, whether the 0.7 goal applies (bf16 is another precision).
# (The f32 snapshot is printed by fmd_compare too; its matmuls measured slower than nn::gemm here.)
VARIANTS = (("sample_frozen_bf16_n1000_ms", "sample_n1000_ms", "Euler step, 1000 points, bf16 nn::FrozenMLP (torch: f32)", False),)


def environment(extra, unset=()):
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(extra)
    return env


def run(cmd, env):
    """The program's "key value" lines as a dict (numbers as float, the rest as str)."""
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    values = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        try:
            values[key] = float(value)
        except ValueError:
            values[key] = value
    return values


def fmd_env(threads):
    """fmd runs in the environment as given, with only its thread count set: Eigen and oneDNN share
    one OpenMP pool, so its workers may spin (PASSIVE measured 10-40 % slower for fmd at 2 threads)."""
    return {"OMP_NUM_THREADS": str(threads)}


def competitor_configs(threads):
    """{name: variables set} tried for PyTorch and LibTorch; FORCED_BLAS is unset in all."""
    configs = {}
    for blas in sorted({threads, 1}, reverse=True):
        for wait in (["PASSIVE", None] if threads > 1 else [None]):
            env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(blas), **MALLOC}
            name = f"OPENBLAS_NUM_THREADS={blas}"
            if threads > 1:
                name += f" OMP_WAIT_POLICY={wait or '(unset)'}"
            if wait:
                env["OMP_WAIT_POLICY"] = wait
            configs[name] = env
    return configs


def summary(runs, key):
    """(median of the per-process medians, min, max over all repetitions) of one workload."""
    return (statistics.median(r[key] for r in runs), min(r[key + "_min"] for r in runs), max(r[key + "_max"] for r in runs))


def best_sgemm(values):
    """{library: best GFLOP/s} from sgemm_<lib>_512x512x<n>_gflops (or sgemm_512x512x<n>_gflops) lines."""
    best = {}
    for key, v in values.items():
        if key.startswith("sgemm_") and key.endswith("_gflops"):
            lib = key[len("sgemm_"):key.index("512x")].rstrip("_")
            best[lib] = max(best.get(lib, 0.0), v)
    return best


def cell(s):
    return f"{s[0]:.2f} ({s[1]:.2f}–{s[2]:.2f})"


def render(header, rows, markdown):
    if markdown:
        lines = [header, ["---"] * len(header)] + rows
        return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) if i == 1 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in [header] + rows)


def speed(a, threads_list):
    competitors = {}
    if a.libtorch and os.path.exists(a.libtorch):
        competitors["LibTorch"] = [a.libtorch, "speed"]
    else:
        print(f"(no LibTorch program at {a.libtorch}: LibTorch column skipped)")
    competitors["PyTorch"] = ["/usr/bin/python3", os.path.join(HERE, "torch_compare.py"), "speed"]
    have_peak = bool(a.peak) and os.path.exists(a.peak)

    load_before = os.getloadavg()[0]  # other work on the machine skews every side; printed below
    runs = defaultdict(list)  # (side, threads, config) -> one dict per process
    peak = {}
    for threads in threads_list:
        t = ["--threads", str(threads)]
        if have_peak:
            peak[threads] = run([a.peak] + t, environment({"OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
                                                         "BLIS_ARCH_TYPE": "skx"}, FORCED_BLAS))
        for _ in range(a.rounds):
            runs["fmd", threads, ""].append(run([a.fmd, "speed"] + t, environment(fmd_env(threads))))
            for name, extra in competitor_configs(threads).items():
                for side, cmd in competitors.items():
                    runs[side, threads, name].append(run(cmd + t, environment(extra, FORCED_BLAS)))

    def best(side, threads, key):
        """(summary, config) of the fastest configuration for this workload."""
        return min((summary(runs[side, threads, name], key), name) for name in competitor_configs(threads))

    # Header: every setting, so that a reader can reproduce the numbers.
    info = {side: runs[side, threads_list[0], next(iter(competitor_configs(threads_list[0])))][0] for side in competitors}
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    given = " ".join(f"{k}={os.environ[k]}" for k in FORCED_BLAS if k in os.environ) or "none"
    print(f"\nfmd vs LibTorch and PyTorch, float32, seed checkerboard MLP (1,578,498 parameters); CPU {cpu}, {os.cpu_count()} cores")
    print(f"load average (1 min) before {load_before:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"ms per call: median of the per-process medians (5 repetitions each, {a.rounds} round(s) interleaved), (min–max of all repetitions)")
    print(f"fmd:      {a.fmd} speed --threads T; environment as given (OpenBLAS settings: {given}) "
          "plus OMP_NUM_THREADS=T (OMP_WAIT_POLICY unset: one OpenMP pool)")
    for side, cmd in competitors.items():
        print(f"{side + ':':<9} {' '.join(cmd)} --threads T; torch {info[side].get('torch_version', '?')}, "
              f"OpenBLAS kernel {info[side].get('openblas_core', '?')}, flush denormals, 1 interop thread")
    print(f"PyTorch and LibTorch: {' and '.join(FORCED_BLAS)} unset; OMP_NUM_THREADS=MKL_NUM_THREADS=T "
          f"{' '.join(f'{k}={v}' for k, v in MALLOC.items())}; per workload the fastest of: " + "; ".join(
              f"T={threads}: " + ", ".join(competitor_configs(threads)) for threads in threads_list))
    for threads, p in peak.items():
        sgemm = ", ".join(f"{lib} {v:.1f}" for lib, v in best_sgemm(p).items())
        print(f"{a.peak} --threads {threads} ({' and '.join(FORCED_BLAS)} unset, OMP_NUM_THREADS=OPENBLAS_NUM_THREADS={threads}, "
              f"BLIS_ARCH_TYPE=skx: Debian's BLIS 0.9 runs generic kernels on Zen 5 otherwise):\n"
              f"  FMA peak {p['fma_peak_gflops']:.1f} GFLOP/s; best sgemm 512x512xN GFLOP/s: {sgemm}; "
              + ", ".join(f"{k} {v}" for k, v in p.items() if isinstance(v, str)))

    header = ["threads", "workload", "fmd ms"] + [f"{side} ms" for side in competitors] + [f"fmd/{side}" for side in competitors]
    header += [f"goal ≤{GOAL}", "fmd GFLOP/s"] + (["% of FMA peak"] if peak else [])
    rows = []
    gflops = {key: g for key, _, g in WORKLOADS}
    for threads in threads_list:
        fmd_runs = runs["fmd", threads, ""]
        lines = [(key, key, label, True) for key, label, _ in WORKLOADS]
        lines += [v for v in VARIANTS if v[0] in fmd_runs[0]]
        for key, theirs_key, label, goal in lines:
            gflop = gflops[theirs_key]
            f = summary(fmd_runs, key)
            theirs = [best(side, threads, theirs_key)[0] for side in competitors]
            ok = f[0] / min(s[0] for s in theirs) <= GOAL
            row = [str(threads), label, cell(f)] + [cell(s) for s in theirs] + [f"{f[0] / s[0]:.2f}" for s in theirs]
            row += [("ok" if ok else "MISS") if goal else "–", f"{gflop / f[0] * 1e3:.1f}"]
            if peak:
                row.append(f"{100 * gflop / f[0] * 1e3 / peak[threads]['fma_peak_gflops']:.0f} %")
            rows.append(row)
    print()
    print(render(header, rows, a.markdown))
    print(f"goal: fmd's median at most {GOAL} times the faster competitor's")

    print("\ncompetitor configurations, median ms (* = kept):")
    for threads in threads_list:
        for side in competitors:
            for name in competitor_configs(threads):
                cells = []
                for key, _, _ in WORKLOADS:
                    mark = "*" if best(side, threads, key)[1] == name else " "
                    cells.append(f"{key[:-3]} {summary(runs[side, threads, name], key)[0]:7.2f}{mark}")
                print(f"  T={threads} {side:<8} {name:<50} " + "  ".join(cells))
    print("\nsgemm 512x512xN (best N of 64/256/1000) inside the benchmark processes, GFLOP/s:")
    for threads in threads_list:
        def sgemm(side, configs):
            return max(best_sgemm(r).get("", 0.0) for name in configs for r in runs[side, threads, name])
        backend = runs["fmd", threads, ""][0].get("gemm_backend", "eigen")
        parts = [f"fmd's nn::gemm ({backend}) {sgemm('fmd', ['']):.1f}"]
        parts += [f"OpenBLAS via {side} {sgemm(side, competitor_configs(threads)):.1f}" for side in competitors]
        print(f"  {threads} thread(s): " + ", ".join(parts))
    print("(the Euler step's GFLOP/s counts the time branch once per call, as fmd computes it; torch evaluates it per point)")


def quality(fmd, steps, threads, seed):
    fmd_environ = environment(fmd_env(threads))
    torch_environ = environment(next(iter(competitor_configs(threads).values())), FORCED_BLAS)
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data.bin")
        run([fmd, "data", "--file", data, "--seed", str(seed)], fmd_environ)
        f = run([fmd, "quality", "--threads", str(threads), "--file", data, "--steps", str(steps), "--seed", str(seed + 1)], fmd_environ)
        torch_samples = os.path.join(tmp, "torch.bin")
        p = run(["/usr/bin/python3", os.path.join(HERE, "torch_compare.py"), "quality", "--threads", str(threads), "--file", data,
                 "--steps", str(steps), "--samples-out", torch_samples, "--seed", str(seed + 1)], torch_environ)
        score = run([fmd, "score", "--file", torch_samples], fmd_environ)
    print(f"\nquality after {steps} training steps (batch 64, same 10000 data points), 1000 points, 1000 Euler steps, {threads} thread(s):")
    print(f"  filled-square fraction: fmd {f['filled']:.3f}, PyTorch {score['filled']:.3f}   (perfect 1.0, N(0,I) noise ≈ 0.48)")
    print(f"  training time: fmd {f['train_seconds']:.1f} s, PyTorch {p['train_seconds']:.1f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fmd", required=True, help="path to the fmd_compare program")
    ap.add_argument("--libtorch", default=os.path.join(ROOT, "build/release/benchmarks/libtorch_compare"),
                    help="path to the libtorch_compare program (column skipped if missing)")
    ap.add_argument("--peak", default=os.path.join(ROOT, "build/release/benchmarks/fmd_peak"),
                    help="path to the fmd_peak program (peak columns skipped if missing)")
    ap.add_argument("--threads", default="1,2", help="thread counts for the speed table")
    ap.add_argument("--rounds", type=int, default=2, help="processes per side and configuration, interleaved")
    ap.add_argument("--markdown", action="store_true", help="print the speed table as a Markdown table")
    ap.add_argument("--quality", type=int, default=0, metavar="STEPS", help="also compare sample quality after STEPS training steps")
    ap.add_argument("--quality-threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-speed", action="store_true")
    a = ap.parse_args()
    if not a.no_speed:
        speed(a, [int(t) for t in a.threads.split(",")])
    if a.quality > 0:
        quality(a.fmd, a.quality, a.quality_threads, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Runs fmd_compare and torch_compare.py on the same workloads and prints the ratios (fmd / PyTorch).

Called by run.sh. Every row is measured in this run; the two programs run one after the other,
never at the same time, each with the stated thread count.
"""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
# Multiply-adds per column of the notebook MLP (2→512, time 512→512, 5×512², 512→2).
MACS_TIME = 512 * 512
MACS_REST = 2 * 512 + 5 * 512 * 512 + 512 * 2


def run(cmd, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    values = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        try:
            values[key] = float(value)
        except ValueError:
            pass
    return values


def train_gflop(batch):
    # forward + weight gradients (each = forward) + input gradients of the hidden and output layers
    fwd = 2 * (MACS_TIME + MACS_REST) * batch
    return (2 * fwd + 2 * (5 * 512 * 512 + 512 * 2) * batch) * 1e-9


def speed(fmd, threads_list):
    rows = []
    sgemm = {}
    for threads in threads_list:
        f = run([fmd, "speed", "--threads", str(threads)], threads)
        p = run(["/usr/bin/python3", os.path.join(HERE, "torch_compare.py"), "speed", "--threads", str(threads)], threads)
        for key, label, gflop, goal in (
                ("train_b64_ms", "training step, batch 64", train_gflop(64), 0.7),
                ("train_b256_ms", "training step, batch 256", train_gflop(256), 1.0),
                ("sample_n1000_ms", "Euler step, 1000 points", 2 * (MACS_TIME + MACS_REST * 1000) * 1e-9, 0.8)):
            rows.append((threads, label, f[key], p[key], f[key] / p[key], goal, gflop / f[key] * 1e3, gflop / p[key] * 1e3))
        sgemm[threads] = (max(v for k, v in f.items() if k.startswith("sgemm")), max(v for k, v in p.items() if k.startswith("sgemm")))

    print("\nfmd vs PyTorch %s, float32, seed checkerboard MLP (1,578,498 parameters); median ms" % torch_version())
    print(f"{'threads':>7}  {'workload':<26} {'fmd ms':>9} {'torch ms':>9} {'fmd/torch':>9} {'goal':>6}  {'fmd GFLOP/s':>11} {'torch GFLOP/s':>13}")
    for threads, label, fm, pm, ratio, goal, fg, pg in rows:
        mark = "ok" if ratio <= goal else "MISS"
        print(f"{threads:>7}  {label:<26} {fm:>9.3f} {pm:>9.3f} {ratio:>9.3f} {'≤' + str(goal):>6}  {fg:>11.1f} {pg:>13.1f}  {mark}")
    print("\nsgemm (512x512 times 512xN, best N of 64/256/1000), GFLOP/s measured in this run:")
    for threads, (e, o) in sgemm.items():
        print(f"  {threads} thread(s): Eigen {e:.1f}, OpenBLAS via torch {o:.1f}")
    print("(the MLP's GFLOP/s counts the sampling time branch once per call for fmd; torch evaluates it per point)")


def quality(fmd, steps, threads, seed):
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data.bin")
        run([fmd, "data", "--file", data, "--seed", str(seed)], threads)
        f = run([fmd, "quality", "--threads", str(threads), "--file", data, "--steps", str(steps), "--seed", str(seed + 1)], threads)
        torch_samples = os.path.join(tmp, "torch.bin")
        p = run(["/usr/bin/python3", os.path.join(HERE, "torch_compare.py"), "quality", "--threads", str(threads), "--file", data,
                 "--steps", str(steps), "--samples-out", torch_samples, "--seed", str(seed + 1)], threads)
        score = run([fmd, "score", "--file", torch_samples], threads)
    print(f"\nquality after {steps} training steps (batch 64, same 10000 data points), 1000 points, 1000 Euler steps, {threads} thread(s):")
    print(f"  filled-square fraction: fmd {f['filled']:.3f}, PyTorch {score['filled']:.3f}   (perfect 1.0, N(0,I) noise ≈ 0.48)")
    print(f"  training time: fmd {f['train_seconds']:.1f} s, PyTorch {p['train_seconds']:.1f} s")


def torch_version():
    out = subprocess.run(["/usr/bin/python3", "-c", "import torch; print(torch.__version__)"], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--fmd", required=True, help="path to the fmd_compare program")
    ap.add_argument("--threads", default="1,2", help="thread counts for the speed table")
    ap.add_argument("--quality", type=int, default=0, metavar="STEPS", help="also compare sample quality after STEPS training steps")
    ap.add_argument("--quality-threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-speed", action="store_true")
    a = ap.parse_args()
    if not a.no_speed:
        speed(a.fmd, [int(t) for t in a.threads.split(",")])
    if a.quality > 0:
        quality(a.fmd, a.quality, a.quality_threads, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Picture of the solver shoot-out: solver_shootout.png (RMS final-state error against NFE, log-log,
one panel per problem, Euler-1000's error as the dashed target line).

    ./build/release/benchmarks/solver_shootout --out out      (--no-network: the two oracles only)
    python3 examples/plots/solver_shootout.py out
"""
import math

import matplotlib.pyplot as plt
import numpy as np

from common import Run

run = Run("solver_shootout")
info = run.info
curves, titles = info["curves"], info["titles"]
colors = plt.get_cmap("tab20").colors
# Same family, same colour hue; grids and variants dashed.
styles = [dict(color=colors[(2 * k) % 20] if k < 10 else colors[(2 * (k - 10)) % 20 + 1], marker="os^vDPX*<>ph"[k % 12],
               linestyle="--" if "grid" in name else "-") for k, name in enumerate(curves)]
styles[0].update(color="black")

cols = 2
rows = math.ceil(len(titles) / cols)
fig = plt.figure(figsize=(15, 5.6 * rows + 1.6), layout="constrained")
grid = fig.add_gridspec(rows + 1, cols, height_ratios=[1] * rows + [0.22])  # last row: the legend
axes = np.array([[fig.add_subplot(grid[r, c]) for c in range(cols)] for r in range(rows)])
for i, (ax, title) in enumerate(zip(axes.flat, titles)):
    pts = run.load(f"problem_{i}")
    for k, name in enumerate(curves):
        c = pts[(pts[:, 0] == k) & (pts[:, 2] > 0)]
        if len(c):
            ax.plot(c[:, 1], c[:, 2], label=name, markersize=5, linewidth=1.4, **styles[k])
    ax.axhline(info["targets"][i], color="0.4", linestyle=":", linewidth=1.5, label="Euler-1000 error (target)")
    ax.set(xscale="log", yscale="log", title=title, xlabel="NFE (network / field evaluations)", ylabel="RMS final-state error")
    ax.set_xticks([4, 8, 16, 32, 64, 128, 256, 1000], ["4", "8", "16", "32", "64", "128", "256", "1000"])
    ax.grid(True, which="major", color="0.85")
    ax.grid(True, which="minor", axis="y", color="0.94")
for ax in axes.flat[len(titles):]:
    ax.set_visible(False)
handles, labels = axes.flat[0].get_legend_handles_labels()
legend = fig.add_subplot(grid[rows, :])
legend.axis("off")
legend.legend(handles, labels, loc="center", ncols=5, frameon=False, fontsize=11)
fig.suptitle("ODE solvers: final-state error against a tight Dopri5 reference, by number of field evaluations", fontsize=14)
run.save(fig, "solver_shootout.png")

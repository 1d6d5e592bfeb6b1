"""Picture of example 04: 04_score_sde.png (data, the probability-flow ODE, the SDEs).

    ./build/release/examples/04_score_sde --out out
    python3 examples/plots/04_score_sde.py out
"""
import math

import matplotlib.pyplot as plt

from common import BLUE, DATA, GREEN, ORANGE, PURPLE, RED, Run, points

run = Run("04_score_sde")
info = run.info
moons = info["data"] == "moons"
lim = 3.5 if moons else 5.5
sde_colors = [GREEN, ORANGE, RED, PURPLE]
floor = f"floor {info['floor']:.3f} ± {info['spread']:.3f}"
panels = [("data", DATA, "fresh data"), ("ode", BLUE, f"probability-flow ODE (Heun): SW2 {info['sw2'][0]:.3f}")]
panels += [(f"sde_{k}", sde_colors[k % len(sde_colors)], f"SDE σ = {s:g} (Euler–Maruyama): SW2 {info['sw2'][k + 1]:.3f}")
           for k, s in enumerate(info["sigmas"])]

cols = 3
rows = math.ceil(len(panels) / cols)
fig, axes = plt.subplots(rows, cols, figsize=(15, (3.55 if moons else 5.2) * rows + 0.4), sharex=True, sharey=True, layout="constrained", squeeze=False)
for ax, (name, color, title) in zip(axes.flat, panels):
    points(ax, run.load(name), color, lim, size=4)
    if moons:
        ax.set_ylim(-2.3, 2.3)  # the moons are wider than high
    ax.set_title(title)
for ax in axes.flat[len(panels):]:
    ax.set_visible(False)
for ax in axes[-1]:
    ax.set_xlabel("$x_1$")
for ax in axes[:, 0]:
    ax.set_ylabel("$x_2$")
target = "ε-prediction" if info["loss"] == "epsilon" else "score (CSM)"
fig.suptitle(f"One {target} network on {info['data']}, sampled {info['sample_steps']} steps on a cosine grid "
             f"[{info['t0']:g}, {info['t_max']:g}] + one denoising step; sliced W2 to fresh data ({floor})", fontsize=13)
run.save(fig, "04_score_sde.png")

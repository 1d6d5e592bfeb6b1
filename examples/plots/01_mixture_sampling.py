"""Pictures of example 01: 01_samples.png and 01_trajectories.png.

    ./build/release/examples/01_mixture_sampling --out out
    python3 examples/plots/01_mixture_sampling.py out
"""
import matplotlib.pyplot as plt

from common import BACKGROUND, BLUE, DATA, GREEN, NOISE, ORANGE, RED, Run, paths, points

run = Run("01_mixture_sampling")
info = run.info
LIM = 6.5
sde_colors = [GREEN, ORANGE, RED]
sigmas = info["sigmas"]

# Samples: data, noise, the ODE and the SDEs, each with its sliced W2 to the data.
fig, axes = plt.subplots(2, 3, figsize=(15, 10.4), sharex=True, sharey=True, layout="constrained")
panels = [
    ("data", DATA, "data (8 Gaussians on a ring)"),
    ("noise", NOISE, "N(0, I): the start at t = 0"),
    ("ode", BLUE, f"ODE, Euler {info['steps']} steps: SW2 {info['ode_sw2']:.3f}"),
] + [(f"sde_{k}", sde_colors[k], f"SDE σ = {s:g}, Euler–Maruyama {info['sde_steps']} steps: SW2 {info['sde_sw2'][k]:.3f}")
     for k, s in enumerate(sigmas)]
for ax, (name, color, title) in zip(axes.flat, panels):
    points(ax, run.load(name), color, LIM)
    ax.set_title(title)
for ax in axes[-1]:
    ax.set_xlabel("$x_1$")
for ax in axes[:, 0]:
    ax.set_ylabel("$x_2$")
fig.suptitle(f"Sampling a Gaussian mixture with its exact velocity; sliced W2 to the data "
             f"(floor of two data sets: {info['floor']:.3f})", fontsize=14)
run.save(fig, "01_samples.png")

# Trajectories: ODE paths are smooth, SDE paths wander but end on the same mixture.
data = run.load("data")
fig, axes = plt.subplots(2, 2, figsize=(11, 11), sharex=True, sharey=True, layout="constrained")
curves = [("ode_paths", BLUE, f"ODE, Euler {info['steps']} steps")] + [
    (f"sde_paths_{k}", sde_colors[k], f"SDE σ = {s:g}, Euler–Maruyama {info['sde_steps']} steps") for k, s in enumerate(sigmas)]
for ax, (name, color, title) in zip(axes.flat, curves):
    points(ax, data, BACKGROUND, LIM, size=2, alpha=0.6)
    states = run.load(name)
    paths(ax, states, color)
    ax.set_title(f"{title}: {states.shape[2]} paths")
for ax in axes[-1]:
    ax.set_xlabel("$x_1$")
for ax in axes[:, 0]:
    ax.set_ylabel("$x_2$")
fig.suptitle("Trajectories from N(0, I) at t = 0 to the data at t = 1 (start points open, end points black, data gray)", fontsize=14)
run.save(fig, "01_trajectories.png")

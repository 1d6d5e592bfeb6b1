"""Pictures of example 02: 02_data.png, 02_samples.png, 02_trajectories.png and 02_loss.png.

    ./build/release/examples/02_checkerboard --out out
    python3 examples/plots/02_checkerboard.py out
"""
import matplotlib.pyplot as plt
import numpy as np

from common import BACKGROUND, BLUE, DATA, ORANGE, RED, Run, paths, points

run = Run("02_checkerboard")
info = run.info
LIM = 4.5
quality = ", ".join(f"{n} steps {f:.3f}" for n, f in zip(info["euler_steps"], info["filled"]))

fig, ax = plt.subplots(figsize=(8, 8), layout="constrained")
data = run.load("data")
points(ax, data, DATA, LIM, size=2, alpha=0.4)
ax.set(title=f"training data: {data.shape[1]} of the checkerboard's points", xlabel="$x_1$", ylabel="$x_2$")
run.save(fig, "02_data.png")

# Samples at five times of the Euler-1000 solve, from N(0, I) at t = 0 to the model's data at t = 1.
snaps = run.load("snapshots")
fig, axes = plt.subplots(1, len(snaps), figsize=(16, 3.9), sharey=True, layout="constrained")
for ax, x, t in zip(axes, snaps, info["snapshot_times"]):
    points(ax, x, BLUE, LIM, size=3)
    ax.set(title=f"t = {t:.2f}", xlabel="$x_1$")
axes[0].set_ylabel("$x_2$")
fig.suptitle(f"Samples along the ODE (Euler, 1000 steps) of the trained MLP; filled-square fraction: {quality}", fontsize=13)
run.save(fig, "02_samples.png")

fig, ax = plt.subplots(figsize=(10, 10), layout="constrained")
points(ax, run.load("fresh"), BACKGROUND, LIM, size=4, alpha=0.8)
states = run.load("trajectories")
paths(ax, states, ORANGE, width=1.0, alpha=0.8)
ax.set(title=f"{states.shape[2]} trajectories, Euler 1000 steps (start open, end black; fresh data gray)",
       xlabel="$x_1$", ylabel="$x_2$")
run.save(fig, "02_trajectories.png")

# Loss per step and its running mean over 1 % of the run.
loss = run.load("loss")
first = info["last_step"] - len(loss) + 1
steps = np.arange(first, first + len(loss))
w = max(1, len(loss) // 100)
mean = np.convolve(loss, np.ones(w) / w, mode="valid")
fig, ax = plt.subplots(figsize=(12, 5.5), layout="constrained")
ax.plot(steps, loss, color=RED, alpha=0.15, linewidth=0.5, label="per step (batch of %d)" % info["batch"])
ax.plot(steps[w - 1:], mean, color=RED, linewidth=2, label=f"mean over {w} steps")
ax.set_ylim(0, min(loss.max(), 2 * np.percentile(loss, 99)) * 1.05)
ax.set_xlim(steps[0], steps[-1])
ax.set(title=f"CFM training loss, {len(loss)} steps (MLP of {info['parameters']:,} parameters, AdamW lr {info['lr']:g})",
       xlabel="training step", ylabel="CFM loss")
ax.legend(loc="upper right")
run.save(fig, "02_loss.png")

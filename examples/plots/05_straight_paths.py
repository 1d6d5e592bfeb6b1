"""Pictures of example 05: 05_samples.png (rows: flows, columns: NFE) and 05_trajectories.png.

    ./build/release/examples/05_straight_paths --out out
    python3 examples/plots/05_straight_paths.py out
"""
import matplotlib.pyplot as plt

from common import BACKGROUND, BLUE, ORANGE, Run, paths, points

run = Run("05_straight_paths")
info = run.info
flows, nfes = info["flows"], info["nfes"]
labels = {"distilled": "2-RF distilled"}
LIM = 4.5
samples = run.load("samples").reshape(len(flows), len(nfes), 2, -1)
filled, sw2 = run.load("filled"), run.load("sw2")

fig, axes = plt.subplots(len(flows), len(nfes), figsize=(16, 3.3 * len(flows) + 0.6), sharex=True, sharey=True,
                         layout="constrained", squeeze=False)
for f, name in enumerate(flows):
    for k, nfe in enumerate(nfes):
        ax = axes[f, k]
        points(ax, samples[f, k], BLUE, LIM, size=3)
        ax.set_title(f"{nfe} NFE: filled {filled[f, k]:.3f}, SW2 {sw2[f, k]:.3f}", fontsize=10.5)
    axes[f, 0].set_ylabel(f"{labels.get(name, name)}\nS = {info['straightness'][f]:.4f}", fontsize=12)
for ax in axes[-1]:
    ax.set_xlabel("$x_1$")
fig.suptitle("Euler samples from the same noise, per flow (rows) and number of steps (columns); "
             "filled-square fraction, sliced W2 to fresh data, straightness S", fontsize=13)
run.save(fig, "05_samples.png")

fresh = run.load("fresh")
fig, axes = plt.subplots(1, 3, figsize=(16, 5.9), sharey=True, layout="constrained")
for f, ax in enumerate(axes):
    points(ax, fresh, BACKGROUND, LIM, size=3, alpha=0.8)
    states = run.load(f"trajectories_{f}")
    paths(ax, states, ORANGE, width=0.9, alpha=0.8)
    ax.set(title=f"{labels.get(flows[f], flows[f])}: straightness S = {info['straightness'][f]:.4f}", xlabel="$x_1$")
axes[0].set_ylabel("$x_2$")
fig.suptitle(f"{states.shape[2]} trajectories per flow, Euler 100 steps from the same noise (start open, end black; fresh data gray)",
             fontsize=13)
run.save(fig, "05_trajectories.png")

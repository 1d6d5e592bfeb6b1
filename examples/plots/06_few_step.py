"""Pictures of example 06: 06_few_step.png (checkerboard: families x NFE) and 06_fashion.png
(Fashion-MNIST, class-conditional with guidance); each drawn when its part ran.

    ./build/release/examples/06_few_step --out out      (--part checkerboard|fashion for one)
    python3 examples/plots/06_few_step.py out
"""
from common import BLUE, Run, image_panels, plt, points

run = Run("06_few_step")
board = run.json("checkerboard")
fashion = run.json("fashion")
if board is None and fashion is None:
    raise SystemExit(f"no results in {run.dir}: run examples/06_few_step with --out {run.out} first")

if board is not None:
    families, nfes = board["families"], board["nfes"]
    samples = run.load("checkerboard").reshape(len(families), len(nfes), 2, -1)
    filled, sw2 = run.load("filled"), run.load("sw2")
    fig, axes = plt.subplots(len(families), len(nfes), figsize=(13, 3.2 * len(families) + 0.5), sharex=True, sharey=True,
                             layout="constrained", squeeze=False)
    for f, name in enumerate(families):
        for k, nfe in enumerate(nfes):
            ax = axes[f, k]
            points(ax, samples[f, k], BLUE, 4.5, size=3)
            ax.set_title(f"{nfe} NFE: filled {filled[f, k]:.3f}, SW2 {sw2[f, k]:.3f}", fontsize=10.5)
        axes[f, 0].set_ylabel(f"{name}\n(trained {board['train_seconds'][f]:.0f} s)", fontsize=12)
    for ax in axes[-1]:
        ax.set_xlabel("$x_1$")
    fig.suptitle(f"Few-step samples from the same noise, {board['steps']} training steps per family;\n"
                 "filled-square fraction and sliced W2 to fresh data", fontsize=13)
    run.save(fig, "06_few_step.png")

if fashion is not None:
    titles = [f"{t}\naccuracy {100 * a:.1f} %, feature SW2 {s:.2f}"
              for t, a, s in zip(fashion["titles"], fashion["accuracy"], fashion["feature_sw2"])]
    fig = image_panels(run.load("fashion"), titles, fashion["side"], fashion["per_class"], fashion["classes"],
                       suptitle=f"Fashion-MNIST, guidance ω = {fashion['omega']:g}, {fashion['steps']} training steps per model: "
                                "MeanFlow (endpoint network) in 1, 2, 4 jumps against CFM at 100 NFE")
    run.save(fig, "06_fashion.png")

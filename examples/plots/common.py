"""Shared loading and style of the examples' plotting scripts.

Each example writes its results (.npy arrays and info.json) into OUTDIR/<example>/; its script
reads them and writes the PNG files into OUTDIR:

    python3 examples/plots/02_checkerboard.py out

Needs matplotlib and NumPy (Debian: apt-get install python3-matplotlib python3-numpy).
"""
import json
import sys
from pathlib import Path

try:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.collections import LineCollection
except ImportError as e:
    sys.exit(f"{e} for {sys.executable}: install python3-matplotlib python3-numpy (Debian) and run the script "
             f"with that python3 (/usr/bin/python3 {' '.join(sys.argv)})")

DPI = 100  # figure sizes below are in inches: width 10-16 in = 1000-1600 px

# Colours of the samplers, shared across figures.
DATA = "0.15"
NOISE = "0.55"
BACKGROUND = "0.85"
BLUE, ORANGE, GREEN, RED, PURPLE = "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"

plt.rcParams.update({
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 10,
    "axes.grid": True,
    "grid.color": "0.9",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
})


class Run:
    """The results of one example run: Run(example).load("samples") is OUTDIR/example/samples.npy."""

    def __init__(self, example):
        if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
            sys.exit(f"usage: {sys.argv[0]} OUTDIR   (the example's --out directory; the pictures go there too)")
        self.out = Path(sys.argv[1])
        self.dir = self.out / example
        if not self.dir.is_dir():
            sys.exit(f"{self.dir} not found: run the example with --out {self.out} first")
        info = self.dir / "info.json"
        self.info = json.loads(info.read_text()) if info.exists() else {}

    def json(self, name):
        """OUTDIR/example/name.json, or None when that part was not run."""
        path = self.dir / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def load(self, name):
        return np.load(self.dir / f"{name}.npy", allow_pickle=False)

    def has(self, name):
        return (self.dir / f"{name}.npy").exists()

    def save(self, fig, name):
        path = self.out / name
        fig.savefig(path)
        plt.close(fig)
        print(f"wrote {path}")


def points(ax, x, color, lim, size=3.0, alpha=0.5, label=None):
    """A 2 x n sample matrix (one column per point) as a scatter plot with equal axes."""
    ax.scatter(x[0], x[1], s=size, c=color, alpha=alpha, linewidths=0, label=label, rasterized=True)
    square(ax, lim)


def square(ax, lim):
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")


def paths(ax, states, color, width=0.8, alpha=0.7, every=1):
    """Trajectories stored as (times, 2, paths): one polyline per path, start points open, end points black."""
    s = states[::every]
    if (len(states) - 1) % every:
        s = np.concatenate([s, states[-1:]])
    lines = np.transpose(s, (2, 0, 1))  # (paths, times, 2)
    ax.add_collection(LineCollection(lines, colors=color, linewidths=width, alpha=alpha))
    ax.scatter(states[0, 0], states[0, 1], s=12, facecolors="white", edgecolors=color, linewidths=0.8, zorder=3)
    ax.scatter(states[-1, 0], states[-1, 1], s=10, c="black", zorder=3, linewidths=0)


def images(ax, x, side, rows, per_row, cols, labels=None):
    """Columns of x (side*side pixels each, row-major, values in [-1, 1]) as a grid: row r shows
    images r*per_row ... r*per_row + cols - 1 (e.g. one row per class); labels name the rows."""
    tiles = -np.ones((rows * (side + 2), cols * (side + 2)))  # background: white after the flip below
    for r in range(rows):
        for c in range(cols):
            img = x[:, r * per_row + c].reshape(side, side)
            y0, x0 = r * (side + 2) + 1, c * (side + 2) + 1
            tiles[y0:y0 + side, x0:x0 + side] = np.clip(img, -1, 1)
    ax.imshow(-tiles, cmap="gray", vmin=-1, vmax=1, interpolation="antialiased")  # dark garments on white
    ax.set_xticks([])
    ax.grid(False)
    if labels is not None:
        ax.set_yticks([r * (side + 2) + side / 2 + 1 for r in range(rows)], labels)
        ax.tick_params(axis="y", length=0)
    else:
        ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def image_panels(sets, titles, side, per_class, classes, shown=8, suptitle=None):
    """One panel per image set (pixels x n, column j of class j // per_class): rows are classes,
    `shown` samples each, class names on the left of the first panel."""
    width = min(16.0, 3.9 * len(sets) + 1.0)
    panel = (width - 1.0) / len(sets)  # inches per panel; its height follows the grid's shape
    title_lines = max(t.count("\n") + 1 for t in titles)
    height = panel * len(classes) / shown + 0.35 * title_lines + (0.5 if suptitle else 0.1)
    fig, axes = plt.subplots(1, len(sets), figsize=(width, height), layout="constrained", squeeze=False)
    fig.get_layout_engine().set(wspace=0.03)  # a visible gap between the panels
    for k, (ax, x, title) in enumerate(zip(axes[0], sets, titles)):
        images(ax, x, side, len(classes), per_class, shown, classes if k == 0 else None)
        ax.set_title(title)
    if suptitle:
        fig.suptitle(suptitle, fontsize=13)
    return fig

"""Picture of example 07: 07_samples.png.

    mpirun -np 2 ./build/release/examples/07_data_parallel --out out
    python3 examples/plots/07_data_parallel.py out
"""
import matplotlib.pyplot as plt

from common import BLUE, Run, points

run = Run("07_data_parallel")
info = run.info
fig, ax = plt.subplots(figsize=(10, 10), layout="constrained")
points(ax, run.load("samples"), BLUE, 4.5, size=5)
ax.set(title=f"{info['ranks']} rank(s) × {info['threads']} thread(s), {info['steps']} steps at global batch {info['batch']} "
             f"({info['ms_per_step']:.2f} ms/step)\nHeun 100 NFE: filled-square fraction {info['filled']:.3f}",
       xlabel="$x_1$", ylabel="$x_2$")
run.save(fig, "07_samples.png")

"""Picture of example 03: 03_fashion_mnist_cfg.png (10 classes x 8 samples for each guidance weight w).

    ./build/release/examples/03_fashion_mnist_cfg --out out
    python3 examples/plots/03_fashion_mnist_cfg.py out
"""
from common import Run, image_panels

run = Run("03_fashion_mnist_cfg")
info = run.info
samples = run.load("samples")
titles = [f"w = {w:g}: accuracy {100 * a:.1f} %" for w, a in zip(info["weights"], info["accuracy"])]
fig = image_panels(samples, titles, info["side"], info["per_class"], info["classes"],
                   suptitle=f"Classifier-free guidance after {info['steps']} training steps, {info['sample_steps']} {info['sampler']} steps from the same noise "
                            f"(accuracy of a classifier at the intended class; real test images {100 * info['ceiling']:.1f} %)")
run.save(fig, "03_fashion_mnist_cfg.png")

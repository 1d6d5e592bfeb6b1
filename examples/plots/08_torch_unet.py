"""Picture of example 08: 08_torch_unet.png (10 classes x 8 samples of the LibTorch U-Net for each guidance weight w).

    ./build/release/examples/08_torch_unet --out out
    python3 examples/plots/08_torch_unet.py out
"""
from common import Run, image_panels

run = Run("08_torch_unet")
info = run.info
samples = run.load("samples")
titles = [f"w = {w:g}: accuracy {100 * a:.1f} %" for w, a in zip(info["weights"], info["accuracy"])]
fig = image_panels(samples, titles, info["side"], info["per_class"], info["classes"],
                   suptitle=f"LibTorch U-Net trained by fmd ({info['steps']} steps at batch {info['batch']}, "
                            f"{info['train_seconds'] / 60:.0f} min), {info['sample_steps']} {info['sampler']} steps "
                            f"(classifier accuracy; real test images {100 * info['ceiling']:.1f} %)")
run.save(fig, "08_torch_unet.png")

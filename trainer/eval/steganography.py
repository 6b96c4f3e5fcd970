"""Steganography probe of a two-way translation (Chu, Zhmoginov & Sandler, arXiv 1712.02950).

A cycle-consistent pair can cheat the cycle loss: G_ab hides the source image in a
low-amplitude signal of its output x_ab that G_ba reads back, so x_aba reconstructs x_a
even where x_ab does not show it. Such a hidden signal does not survive a little noise. The
probe adds Gaussian noise of a few standard deviations (in the units of the images' value
range, [-1, 1]: 0.01 is half a percent of it) to x_ab before translating it back, and reports
how much the reconstruction x_aba degrades; likewise b -> a -> b.

For each direction ("a2b" = a -> b -> a, "b2a" = b -> a -> b)::

    {"forward": str, "back": str, "examples": int,
     "clean": {"l1": float, "psnr": float},          # x_aba against x_a, no noise
     "noisy": [{"stddev": float, "l1": float, "psnr": float, "psnr_drop": float,
                "gain": float}, ...]}

``l1`` and ``psnr`` compare the reconstruction with the original ([-1, 1] images, PSNR with
peak-to-peak 2). ``psnr_drop`` = clean PSNR - noisy PSNR. ``gain`` = mean |x_aba(noisy) -
x_aba(clean)| / mean |noise|: how much the back translation amplifies a perturbation of its
input. An honest pair that keeps the content visible has a gain near or below 1 (the noise
passes through, or the generator smooths it away); a pair that decodes a hidden signal has a
large gain, since it must amplify that signal, and noise with it. The noise is not clipped
to the value range: the probe perturbs what the back translation reads, wherever x_ab lies.

The probe reads the first ``PROBE_EXAMPLES`` test images of each source domain: it translates
every one five times (forward, back clean, back at each noise), a mean gain settles on far
fewer images than an accuracy does, and a method that translates by optimisation (CoGAN
inverts a generator per batch) would otherwise spend most of its evaluation here.
"""

import numpy as np

from trainer.eval import classifiers
from trainer.eval.conditional import l1, psnr

NOISE_STDDEVS = (0.01, 0.02, 0.05)
NOISE_SEED = 1712
BATCH = 64
PROBE_EXAMPLES = 256
# Forward path role -> the role that translates back.
CYCLES = (("a2b", "b2a"), ("b2a", "a2b"))


def applies(directions):
    """Whether the probe measures a model with these ``translation_directions``: it needs both
    an a -> b and a b -> a single-image path."""
    return {role for role, *_ in directions} >= {"a2b", "b2a"}


def _run(model, x, path):
    out = []
    for i in range(0, len(x), BATCH):
        out.append(np.asarray(model.translate(x[i : i + BATCH], path), np.float32))
    return np.concatenate(out)


def cycle_degradation(model, images, forward, back, stddevs=NOISE_STDDEVS, seed=NOISE_SEED):
    """The probe along ``forward`` then ``back`` (path names) on ``images`` (uint8, or float32
    in [-1, 1]); returns the direction entry described in the module docstring."""
    x = images if images.dtype == np.float32 else classifiers.to_float(images)
    translated = _run(model, x, forward)
    clean = _run(model, translated, back)
    clean_psnr = psnr(clean, x)
    rng = np.random.default_rng(seed)
    noisy = []
    for stddev in stddevs:
        noise = rng.normal(0.0, stddev, translated.shape).astype(np.float32)
        rec = _run(model, translated + noise, back)
        noisy_psnr = psnr(rec, x)
        noisy.append(
            {
                "stddev": float(stddev),
                "l1": l1(rec, x),
                "psnr": noisy_psnr,
                "psnr_drop": clean_psnr - noisy_psnr,
                "gain": l1(rec, clean) / max(float(np.mean(np.abs(noise))), 1e-12),
            }
        )
    return {
        "forward": forward,
        "back": back,
        "examples": len(x),
        "clean": {"l1": l1(clean, x), "psnr": clean_psnr},
        "noisy": noisy,
    }


def probe(model, directions, x_test, stddevs=NOISE_STDDEVS):
    """``{"a2b": entry, "b2a": entry}`` for ``directions`` (``[(role, path, source, target)]``
    as evaluation finds them) on the test images ``x_test`` ({domain: (uint8 images, labels)})."""
    found = {role: (path, src) for role, path, src, _ in directions}
    out = {}
    for role, back_role in CYCLES:
        path, src = found[role]
        images = x_test[src][0][:PROBE_EXAMPLES]
        out[role] = cycle_degradation(model, images, path, found[back_role][0], stddevs)
    return out


def headline(result):
    """One line per direction: the reconstruction PSNR, clean and at the largest noise."""
    lines = []
    for role, e in (result or {}).items():
        worst = e["noisy"][-1]
        lines.append(
            f"steganography {role}: cycle PSNR {e['clean']['psnr']:.2f} dB clean, "
            f"{worst['psnr']:.2f} dB with noise {worst['stddev']:g} on the translation "
            f"(gain {worst['gain']:.2f})"
        )
    return lines


def markdown(result):
    """The metrics.md table (empty without a probe)."""
    if not result:
        return []
    out = [
        "Steganography probe (arXiv 1712.02950): Gaussian noise of the given stddev (image "
        "range [-1, 1]) added to the translation before translating it back; the "
        "reconstruction against the original. Gain = change of the reconstruction per unit of "
        "noise: near or below 1 for a pair that keeps the content visible, large for one that "
        "hides it in a low-amplitude signal.",
        "",
        "| cycle | noise stddev | L1 | PSNR (dB) | PSNR drop (dB) | gain |",
        "|---|---|---|---|---|---|",
    ]
    for role, e in result.items():
        cycle = f"{role} ({e['forward']} → {e['back']})"
        out.append(f"| {cycle} | clean | {e['clean']['l1']:.4f} | {e['clean']['psnr']:.2f} | | |")
        for n in e["noisy"]:
            out.append(
                f"| {cycle} | {n['stddev']:g} | {n['l1']:.4f} | {n['psnr']:.2f} | "
                f"{n['psnr_drop']:.2f} | {n['gain']:.2f} |"
            )
    return out + [""]

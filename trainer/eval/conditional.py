"""Figures of the paths that take noise or a condition, and of paired translation.

A path is measured by what its declared inputs are (``trainer.methods.paths``), never by its
name or its method:

- ``generate`` kind: noise only (GAN's ``z -> image``). Codes are drawn from the prior the
  ``Noise`` input declares (seeded); the images are compared with the real test images of the
  path's target domain by digit FID/KID. The reference figure is the FID of as many real
  *train* images against the same test images: the floor a perfect generator reaches at this
  sample size.
- ``conditional generate``: noise and a class one-hot (cGAN's ``(z, y) -> image``). Every class
  is asked for equally often; besides FID/KID, the class accuracy is the fraction of samples
  the target domain's digit classifier reads as the class asked for (per class too), against
  the classifier's accuracy on real test images (the ceiling).
- ``conditional translation``: an image and a target-domain one-hot (StarGAN's
  ``(x, c) -> image``). Per target domain, the test images of every other domain are
  translated into it: target-domain accuracy (the run's all-domain classifier assigns the
  target), class preservation (the target domain's digit classifier, or mnist's for a domain
  without one, reads the source image's class) and digit FID/KID against the target's real
  test images; then the average over targets. The grid has one row per source image and one
  column per target domain.
- paired translation (methods whose ``DATA`` is ``paired``, e.g. pix2pix): mean L1 and PSNR of
  the translation against its aligned target on the test split, beside the identity baseline
  (the source image itself against the target).
"""

import keras
import numpy as np

from trainer.eval import classifiers
from trainer.eval import metrics as estimators
from trainer.networks import inference

GENERATE = "generate"
CONDITIONAL_GENERATE = "conditional generate"
CONDITIONAL_TRANSLATION = "conditional translation"
KINDS = {
    ("noise",): GENERATE,
    ("noise", "onehot"): CONDITIONAL_GENERATE,
    ("onehot", "noise"): CONDITIONAL_GENERATE,
    ("image", "onehot"): CONDITIONAL_TRANSLATION,
    ("onehot", "image"): CONDITIONAL_TRANSLATION,
}
NOISE_SEED = 20140610
BATCH = 64
# Samples whose pairwise distances measure a set's diversity (200 images: 19,900 pairs).
DIVERSITY_IMAGES = 200
# The kind of a path that generates one image per domain from one noise (CoGAN's pair).
JOINT_GENERATE = "joint_generate"
GRID_SOURCES = 8
GRID_PER_CLASS = 8


def path_kind(path):
    """GENERATE, CONDITIONAL_GENERATE, CONDITIONAL_TRANSLATION or None (another input set)."""
    return KINDS.get(tuple(s.kind for s in path.inputs))


def _spec(path, kind):
    return next(s for s in path.inputs if s.kind == kind)


def input_width(path, name):
    """The last axis of the path model's input ``name`` (the noise size)."""
    model = path.model
    for tensor in getattr(model, "inputs", None) or ():
        if tensor.name == name or tensor.name.split(":")[0] == name:
            return int(tensor.shape[-1])
    raise ValueError(
        f"Path input {name!r} is declared but its model has no input of that name "
        f"(inputs: {', '.join(t.name for t in getattr(model, 'inputs', None) or ()) or 'none'}): "
        "name the keras.Input as declared."
    )


def draw_noise(prior, n, width, seed=NOISE_SEED):
    """[n, width] float32 codes from a declared prior (``paths.normal`` / ``paths.uniform``)."""
    rng = np.random.default_rng(seed)
    kind = prior["distribution"]
    if kind == "normal":
        z = rng.normal(prior["mean"], prior["stddev"], (n, width))
    elif kind == "uniform":
        z = rng.uniform(prior["low"], prior["high"], (n, width))
    else:
        raise ValueError(f"Unknown prior distribution {kind!r}: use uniform or normal.")
    return z.astype(np.float32)


def run_path(path, feeds):
    """The output of a one-output path's model on ``feeds`` (see ``run_outputs``)."""
    (images,) = run_outputs(path, feeds)
    return images


def one_hot(indices, depth):
    return np.eye(depth, dtype=np.float32)[np.asarray(indices, np.int64)]


def _fid_kid(judge, fake, real):
    f_fake, f_real = judge.features(fake), judge.features(real)
    mean, std = estimators.kid(f_fake, f_real)
    return {"fid": estimators.fid(f_fake, f_real), "kid": mean, "kid_std": std}


def class_labels_as_ids(labels):
    """One-hot labels "0" ... "9" -> class ids; anything else cannot be judged by a digit
    classifier (None)."""
    try:
        ids = [int(label) for label in labels]
    except (TypeError, ValueError):
        return None
    return ids if all(i >= 0 for i in ids) else None


# -- generate and conditional generate -----------------------------------------------------------


def generate(path, n, seed=NOISE_SEED):
    """(images [n, S, S, 3], asked class ids [n] or None) of a generate path, every class of a
    conditional one asked for equally often (class k at rows k, k + K, ...)."""
    noise = _spec(path, "noise")
    feeds = {noise.name: draw_noise(noise.prior, n, input_width(path, noise.name), seed)}
    classes = None
    if path_kind(path) == CONDITIONAL_GENERATE:
        cond = _spec(path, "onehot")
        classes = np.arange(n) % len(cond.labels)
        feeds[cond.name] = one_hot(classes, len(cond.labels))
    return run_path(path, feeds), classes


def score_generate(path, n, x_test, judge, asked, x_train=None):
    """Figures of a (conditional) generate path against the target's real test images.

    ``x_test``: (uint8 images, labels or None) of the target domain; ``judge``: its digit
    classifier (features for FID, classes for the class accuracy).
    """
    fake, classes = generate(path, n)
    real, real_labels = x_test
    entry = {
        "kind": path_kind(path),
        "target": path.target_domain,
        "examples": int(n),
        "class_accuracy": None,
        "per_class_accuracy": None,
        "real_class_accuracy": None,
        "fid": None,
        "kid": None,
        "kid_std": None,
        "real_fid": None,
    }
    if classes is not None and "class" in asked:
        labels = class_labels_as_ids(_spec(path, "onehot").labels)
        if labels is not None:
            expected = np.asarray(labels)[classes]
            predicted = judge.predict(fake)
            entry["class_accuracy"] = float(np.mean(predicted == expected))
            entry["per_class_accuracy"] = {
                str(label): float(np.mean(predicted[expected == label] == label))
                for label in labels
                if np.any(expected == label)
            }
            if real_labels is not None:
                entry["real_class_accuracy"] = float(np.mean(judge.predict(real) == real_labels))
    if "fid" in asked:
        entry.update(_fid_kid(judge, fake, real))
        if x_train is not None:
            entry["real_fid"] = _fid_kid(judge, x_train, real)["fid"]
    return entry, fake, classes


def run_outputs(path, feeds):
    """Every output of the path's model on ``feeds`` ({input name: array}, in declared order),
    in declared order and in batches; float32 images clipped to [-1, 1]."""
    if path.model is None:
        raise ValueError(
            f"Path {path.description!r} has no model: conditional and noise paths are measured "
            "through the model they export."
        )
    names = path.input_names()
    outs = None
    for i in range(0, len(feeds[names[0]]), BATCH):
        args = [np.asarray(feeds[name][i : i + BATCH], np.float32) for name in names]
        y = inference.run(path.model, args if len(args) > 1 else args[0])
        ys = [np.asarray(keras.ops.convert_to_numpy(t), np.float32) for t in _as_list(y)]
        outs = outs or [[] for _ in ys]
        for out, t in zip(outs, ys):
            out.append(np.clip(t, -1.0, 1.0))
    return [np.concatenate(out) for out in outs]


def _as_list(y):
    return (
        list(y.values())
        if isinstance(y, dict)
        else list(y)
        if isinstance(y, (list, tuple))
        else [y]
    )


def mean_pairwise_distance(images, count=DIVERSITY_IMAGES, seed=NOISE_SEED):
    """Mean L2 distance between ``count`` of the images (uint8 or [-1, 1] float), pair by pair:
    how spread a set is; a generator collapsed onto a few samples scores far below real data."""
    x = classifiers.to_float(images) if np.asarray(images).dtype == np.uint8 else images
    x = np.asarray(x, np.float64)
    pick = np.random.default_rng(seed).permutation(len(x))[:count]
    flat = x[pick].reshape(len(pick), -1)
    sq = np.sum(flat**2, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * flat @ flat.T, 0.0)
    upper = np.triu_indices(len(pick), k=1)
    return float(np.mean(np.sqrt(d2[upper])))


def score_joint_generate(path, n, domains, judges, x_tests, seed=NOISE_SEED):
    """Figures of a path that generates one image per domain from one noise (CoGAN's pair).

    Per domain: the judge's class histogram of the ``n`` samples and its largest distance from
    uniform (a collapsed generator piles onto a few digits), and the diversity, the samples'
    mean pairwise distance over that of the domain's real test images (near 1 = as spread as
    real data). Across domains, the correspondence: the fraction of noises whose images every
    judge reads as the same digit (the pair is one digit drawn in each domain).
    ``judges``, ``x_tests``: per domain in ``domains`` order, its digit classifier and its
    (uint8 test images, labels).
    """
    noise = _spec(path, "noise")
    feeds = {noise.name: draw_noise(noise.prior, n, input_width(path, noise.name), seed)}
    fakes = run_outputs(path, feeds)
    per_domain, predicted = {}, []
    for domain, fake, judge, (real, labels) in zip(domains, fakes, judges, x_tests):
        classes = judge.predict(fake)
        predicted.append(classes)
        depth = int(np.max(labels)) + 1 if labels is not None else int(np.max(classes)) + 1
        histogram = np.bincount(classes, minlength=depth)[:depth] / float(n)
        per_domain[domain] = {
            "class_histogram": [float(v) for v in histogram],
            "uniform_gap": float(np.max(np.abs(histogram - 1.0 / depth))),
            "diversity": mean_pairwise_distance(fake) / mean_pairwise_distance(real),
        }
    same = np.all([p == predicted[0] for p in predicted[1:]], axis=0)
    entry = {
        "kind": JOINT_GENERATE,
        "domains": list(domains),
        "examples": int(n),
        "per_domain": per_domain,
        "correspondence": float(np.mean(same)),
    }
    return entry, fakes


def generate_grid_rows(path, fake, classes):
    """[(label, images)]: one row per class (its first samples) or four rows of samples."""
    if classes is None:
        rows = min(4, len(fake) // GRID_PER_CLASS)
        return [
            (f"samples {r + 1}", fake[r * GRID_PER_CLASS : (r + 1) * GRID_PER_CLASS])
            for r in range(rows)
        ]
    labels = _spec(path, "onehot").labels
    return [
        (f"class {labels[k]}", fake[classes == k][:GRID_PER_CLASS])
        for k in range(len(labels))
        if np.any(classes == k)
    ]


# -- conditional translation ---------------------------------------------------------------------


def translate_into(path, images, target_index, depth):
    """Images (uint8 or [-1, 1]) translated into the domain at ``target_index`` of the one-hot."""
    image, cond = _spec(path, "image"), _spec(path, "onehot")
    x = images if images.dtype != np.uint8 else classifiers.to_float(images)
    feeds = {image.name: x, cond.name: one_hot(np.full(len(x), target_index), depth)}
    return run_path(path, feeds)


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def score_conditional_translation(path, domains, x_test, domain_judge, class_judges, asked, n):
    """Per target domain and averaged: target-domain accuracy, class preservation, FID/KID.

    ``domains``: the one-hot's labels in order; ``x_test``: {domain: (uint8, labels or None)};
    ``domain_judge``: classes in ``domains`` order; ``class_judges``: {domain: (judge name,
    Judge) or None}. ``n`` caps the translated images per target (split evenly over sources).
    """
    depth = len(domains)
    per_source = max(n // max(depth - 1, 1), 2)
    targets = {}
    for t, target in enumerate(domains):
        sources = [s for s in domains if s != target]
        translated, expected = [], []
        for source in sources:
            x_src, y_src = x_test[source]
            x_src = x_src[:per_source]
            translated.append(translate_into(path, x_src, t, depth))
            expected.append(None if y_src is None else y_src[:per_source])
        fake = np.concatenate(translated)
        entry = {
            "sources": sources,
            "examples": int(len(fake)),
            "domain_accuracy": float(np.mean(domain_judge.predict(fake) == t)),
            "class_preservation": None,
            "class_judge": None,
            "fid": None,
            "kid": None,
            "kid_std": None,
        }
        judged = class_judges.get(target)
        labelled = all(e is not None for e in expected)
        if judged is not None and "transfer" in asked and labelled:
            name, judge = judged
            entry["class_judge"] = name
            entry["class_preservation"] = float(
                np.mean(judge.predict(fake) == np.concatenate(expected))
            )
        if "fid" in asked:
            # Features of the target's digit classifier; without one, of the domain judge.
            judge = judged[1] if judged is not None else domain_judge
            entry.update(_fid_kid(judge, fake, x_test[target][0][: len(fake)]))
        targets[target] = entry
    average = {
        key: _mean([e[key] for e in targets.values()])
        for key in ("domain_accuracy", "class_preservation", "fid", "kid")
    }
    return {"kind": CONDITIONAL_TRANSLATION, "domains": list(domains), "targets": targets,
            "average": average}  # fmt: skip


def translation_grid_rows(path, domains, x_test, count=GRID_SOURCES):
    """[(label, images)]: one row per source image (one per domain, cycling, up to ``count``):
    the source, then its translation into every target domain in one-hot order."""
    picks = []
    for i in range(count):
        domain = domains[i % len(domains)]
        images = x_test[domain][0]
        if i // len(domains) < len(images):
            picks.append((domain, images[i // len(domains)]))
    sources = np.stack([image for _, image in picks])
    columns = [classifiers.to_float(sources)] + [
        translate_into(path, sources, t, len(domains)) for t in range(len(domains))
    ]
    table = np.stack(columns, axis=1)  # [rows, 1 + D, S, S, 3]
    return [(f"from {domain}", table[r]) for r, (domain, _) in enumerate(picks)]


# -- paired translation --------------------------------------------------------------------------


def psnr(x, y):
    """Mean PSNR (dB) per image of [-1, 1] images (peak-to-peak 2); identical images -> 100."""
    mse = np.mean((np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2, axis=(1, 2, 3))
    return float(np.mean(np.where(mse > 0, 10.0 * np.log10(4.0 / np.maximum(mse, 1e-10)), 100.0)))


def l1(x, y):
    """Mean absolute difference of [-1, 1] images."""
    return float(np.mean(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))


def paired_scores(translated, sources, targets):
    """(L1 and PSNR of the translations against their aligned targets, the identity baseline's).

    ``translated`` in [-1, 1]; ``sources`` and ``targets`` uint8, index-aligned."""
    x_src, x_dst = classifiers.to_float(sources), classifiers.to_float(targets)
    n = min(len(translated), len(x_dst))
    return (
        {"l1": l1(translated[:n], x_dst[:n]), "psnr": psnr(translated[:n], x_dst[:n])},
        {"identity_l1": l1(x_src[:n], x_dst[:n]), "identity_psnr": psnr(x_src[:n], x_dst[:n])},
    )

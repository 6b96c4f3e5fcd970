"""The ``multi_domain`` data kind: images with the index of the domain they come from.

Batches ``{"x": float32 [B, S, S, 3] in [-1, 1], "domain": int64 [B], "y": int64 [B]}``:
``domain`` indexes the method's domain labels (``domain_labels(config)``), ``y`` is the class
id where the domain has one (-1 otherwise; kept for evaluation, never a training target).

Domain labels come in groups (``domain_groups``). One group is plain multi-domain training,
``--domains=mnist,mnist_m,digits`` (without it, ``--domain_a`` and ``--domain_b``): every label
is a source domain. Several groups are
StarGAN's mask-vector setting, several datasets whose label sets differ:
``--domain_groups="dataset=mnist,mnist_m,digits;style=mnist_inverted,mnist_colored,mnist_thick"``
says dataset 1 labels the source domain and dataset 2 the style; an example carries the one
label of its own group and nothing about the other groups.

Domains are read from ``--dataset`` (the embedded digit domains, ``folder`` with
``train/<domain>/``, or TFDS), plus style domains derived here from ``mnist`` by morphology:
``mnist_thick`` (strokes dilated by a 3x3 max filter) and ``mnist_thin`` (eroded by a 3x3 min
filter), rendered from the same digits as ``mnist``.

Training draws every domain equally often (seeded), whatever its size; evaluation reads each
domain once, in label order.
"""

import numpy as np
import tensorflow as tf

from trainer.data import labeled

# Derived style domain -> the digit domain it is rendered from (by DERIVATIONS below).
DERIVED_DOMAINS = {
    "mnist_thick": "mnist",
    "mnist_thin": "mnist",
}


def _morph(image, grow):
    x = tf.cast(image, tf.float32)[None]
    if grow:
        x = tf.nn.max_pool2d(x, 3, 1, "SAME")
    else:
        x = -tf.nn.max_pool2d(-x, 3, 1, "SAME")
    return tf.cast(x[0], tf.uint8)


DERIVATIONS = {
    "mnist_thick": lambda image: _morph(image, grow=True),
    "mnist_thin": lambda image: _morph(image, grow=False),
}


def derive_arrays(name, images):
    """uint8 numpy images [N, H, W, C] drawn as the derived style ``name`` (``DERIVATIONS``,
    the rendering the data pipeline applies image by image)."""
    derive = DERIVATIONS[name]
    if len(images) == 0:
        return np.asarray(images, np.uint8)
    return np.stack([np.asarray(derive(image)) for image in images]).astype(np.uint8)


def parse_groups(text):
    """``"dataset=a,b;style=c,d"`` -> ``(("dataset", ("a", "b")), ("style", ("c", "d")))``."""
    groups = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        name, sep, labels = part.partition("=")
        labels = tuple(x.strip() for x in labels.split(",") if x.strip())
        if not sep or not name.strip() or not labels:
            raise ValueError(
                f"--domain_groups: cannot read {part!r}; write NAME=DOMAIN,DOMAIN;NAME=DOMAIN,... "
                "e.g. dataset=mnist,mnist_m,digits;style=mnist_inverted,mnist_colored."
            )
        groups.append((name.strip(), labels))
    return tuple(groups)


def domain_groups(config):
    """The domain label groups of a run: ``--domain_groups`` if given, else ``--domains``.

    Returns ``((group name, (label, ...)), ...)``; raises ValueError naming the problem.
    """
    text = str(dict(config.hparams).get("domain_groups", "") or "")
    domains = tuple(config.data.domains)
    if text:
        groups = parse_groups(text)
        flat = tuple(label for _, ls in groups for label in ls)
        if domains and domains != flat:
            raise ValueError(
                f"--domains={','.join(domains)} disagrees with --domain_groups (which lists "
                f"{','.join(flat)}): drop --domains, or list the same domains in the same order."
            )
    else:
        if not domains:
            # Without --domains, the pair every method has: --domain_a and --domain_b.
            domains = tuple(d for d in (config.data.domain_a, config.data.domain_b) if d)
        if len(domains) < 2 or len(set(domains)) < 2:
            raise ValueError(
                f"--method={config.method} trains on several domains: pass "
                "--domains=NAME,NAME,... (e.g. mnist,mnist_m,digits,mnist_inverted,"
                f"mnist_colored); got {', '.join(domains) or 'none'}."
            )
        groups = (("domain", domains),)
    flat = [label for _, ls in groups for label in ls]
    repeated = sorted({x for x in flat if flat.count(x) > 1})
    if repeated:
        raise ValueError(f"Domain(s) {', '.join(repeated)} listed twice: each label appears once.")
    names = [g for g, _ in groups]
    if len(set(names)) != len(names):
        raise ValueError(f"--domain_groups repeats a group name: {', '.join(names)}.")
    if len(flat) < 2:
        raise ValueError(f"Multi-domain training needs at least two domains, got {flat}.")
    return groups


def domain_labels(config):
    """Every domain label in order (the groups concatenated)."""
    return tuple(label for _, labels in domain_groups(config) for label in labels)


def load_labelled_domain(config, name, split):
    """A :class:`trainer.data.Domain` for ``name``, derived domains included."""
    base = DERIVED_DOMAINS.get(name)
    if base is None or config.data.dataset != "digits":
        return labeled.load(config, name, split)
    domain = labeled.load(config, base, split)
    derive = DERIVATIONS[name]
    domain.dataset = domain.dataset.map(
        lambda ex: {"image": derive(ex["image"]), "label": ex["label"]},
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    domain.name = name
    return domain


def multi_domain_dataset(config, split, *, batch_size, training, seed):
    """``{"x", "domain", "y"}`` batches over every domain label (the ``multi_domain`` kind)."""
    streams = []
    for index, name in enumerate(domain_labels(config)):
        domain = load_labelled_domain(config, name, split)
        ds = labeled.shuffled(domain.dataset, domain.num_examples, config, seed + index, training)
        ds = ds.map(
            lambda ex, i=index: {
                "x": labeled.to_float(ex["image"]),
                "domain": tf.constant(i, tf.int64),
                "y": tf.cast(ex["label"], tf.int64),
            },
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        streams.append(ds)
    if training:
        ds = tf.data.Dataset.sample_from_datasets(streams, seed=seed)
    else:
        ds = streams[0]
        for s in streams[1:]:
            ds = ds.concatenate(s)
    return labeled.batched(ds, config, batch_size, training)

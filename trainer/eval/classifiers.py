"""Judges for evaluation: a small CNN per domain, an A-vs-B domain classifier, feature extractors.

Every classifier is trained once on a domain's train split and cached as a ``.keras`` file
beside the data, keyed by the dataset version, so a rebuilt dataset gets new judges:

    <data_dir>/img2img_classifiers/<dataset>-<version>/<domain>.keras        class classifier
    <data_dir>/img2img_classifiers/<dataset>-<version>/<a>_vs_<b>.keras      domain classifier
    ... and a ``.json`` beside each: its test accuracy, training set size, epochs, seconds.

Classifiers take images in [-1, 1] at any size (they resize to ``CLASSIFIER_SIZE`` first) and
end with a ``features`` layer (the penultimate, 128-d) and a ``logits`` layer. FID/KID on the
``features`` output of the target domain's classifier is the "digit FID" of the reports: it
compares images as a digit recogniser sees them, which InceptionV3 (trained on photos) does not.

Measured test accuracy with the default recipe (width 32, 12 epochs with random shifts of up
to 10%, about a minute on 2 CPU cores each): mnist 0.98, mnist_m 0.93. The MNIST-M-style
domain misses the 0.95 bar: 4,000 photo-textured training images are too few for a small CNN
(batch norm gave 0.91); evaluation notes it in every report whose judge is below the bar, and
its oracle baseline shows the ceiling.
"""

import contextlib
import hashlib
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from trainer.io_utils import atomic_write_json

CLASSIFIER_SIZE = 32
CACHE_SUBDIR = "img2img_classifiers"
FEATURES_LAYER = "features"
# Bumped when the architecture or training recipe changes, so stale caches are not reused.
RECIPE_VERSION = 2
DOMAIN_TRAIN_LIMIT = 2000  # train images per domain for the A-vs-B classifier


@contextlib.contextmanager
def float32_policy():
    """Classifiers are built and run in float32 even inside a mixed-precision training run."""
    old = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(old)


def build_classifier(num_classes, *, width=32, seed=0, name="classifier"):
    """A small CNN: 3 conv stages (ReLU, max-pool), a 128-d ``features`` layer, logits.

    No batch normalization: with a few hundred steps its moving statistics lag the weights and
    inference accuracy suffers.
    """

    def init(i):
        return keras.initializers.HeNormal(seed=seed + i)

    inputs = keras.Input((None, None, 3), name="image")
    x = keras.layers.Resizing(CLASSIFIER_SIZE, CLASSIFIER_SIZE, name="resize")(inputs)
    for i, filters in enumerate((width, width * 2, width * 4)):
        x = keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", kernel_initializer=init(i)
        )(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.3, seed=seed + 10)(x)
    features = keras.layers.Dense(
        128, activation="relu", kernel_initializer=init(9), name=FEATURES_LAYER
    )(x)
    x = keras.layers.Dropout(0.3, seed=seed + 11)(features)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def to_float(images):
    """uint8 [0, 255] -> float32 [-1, 1] (numpy)."""
    return np.asarray(images, np.float32) / 127.5 - 1.0


def train_classifier(
    images,
    labels,
    num_classes,
    *,
    epochs=12,
    batch_size=64,
    lr=2e-3,
    seed=0,
    name="classifier",
    verbose=0,
):
    """Trains ``build_classifier`` on uint8 ``images`` [N, S, S, 3] and int ``labels`` [N]."""
    with float32_policy():
        model = build_classifier(num_classes, seed=seed, name=name)
        steps = epochs * int(np.ceil(len(images) / batch_size))
        schedule = keras.optimizers.schedules.CosineDecay(lr, max(steps, 1))
        model.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        ds = (
            tf.data.Dataset.from_tensor_slices((to_float(images), np.asarray(labels, np.int64)))
            .shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size)
        )
        # Digits move around their frame: random shifts are the augmentation that helps.
        shift = keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed)
        ds = ds.map(lambda x, y: (shift(x, training=True), y)).prefetch(tf.data.AUTOTUNE)
        model.fit(ds, epochs=epochs, verbose=verbose, shuffle=False)
    return model


def predict_logits(model, images, batch_size=256):
    """Logits for uint8 or [-1, 1] float images, in batches."""
    x = to_float(images) if np.asarray(images).dtype == np.uint8 else np.asarray(images, np.float32)
    out = [
        keras.ops.convert_to_numpy(model(x[i : i + batch_size], training=False))
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]), np.float32)


def accuracy(model, images, labels):
    return float(np.mean(np.argmax(predict_logits(model, images), -1) == np.asarray(labels)))


def feature_model(classifier):
    """The classifier cut at its penultimate ``features`` layer (128-d)."""
    return keras.Model(classifier.input, classifier.get_layer(FEATURES_LAYER).output)


def features(extractor, images, batch_size=256):
    """Feature vectors [N, D] of uint8 or [-1, 1] float images."""
    return predict_logits(extractor, images, batch_size)


# -- dataset versions and the cache -----------------------------------------------------------


def _folder_fingerprint(data_dir, domains):
    from trainer.data import folders

    digest = hashlib.sha1()
    for domain in sorted(domains):
        for split in ("train", "test"):
            try:
                folder = folders.domain_dir(data_dir, domain, split)
            except FileNotFoundError:
                continue
            for path in folders.list_images(folder):
                stat = os.stat(path)
                digest.update(
                    f"{os.path.relpath(path, data_dir)}:{stat.st_size}:{stat.st_mtime_ns};".encode()
                )
    return digest.hexdigest()[:12]


def dataset_version(dataset, domains, data_dir=None):
    """A string that changes when the data the classifiers learn from changes."""
    if dataset == "digits":
        from trainer.data import digit_domains

        return str(digit_domains.DigitDomains.VERSION)
    if dataset == "folder":
        return _folder_fingerprint(data_dir, domains)
    import tensorflow_datasets as tfds

    if dataset == "tfds":
        return "+".join(str(tfds.builder(d, data_dir=data_dir).version) for d in sorted(domains))
    return str(tfds.builder(dataset, data_dir=data_dir).version)


def cache_dir(dataset, domains, data_dir=None, root=None):
    """``<root or data_dir>/img2img_classifiers/<dataset>-<version>``."""
    if root is None:
        from trainer.data import default_data_dir

        root = os.path.join(data_dir or default_data_dir(), CACHE_SUBDIR)
    version = dataset_version(dataset, domains, data_dir)
    safe = dataset.replace("/", "_").replace(os.sep, "_")
    return os.path.join(root, f"{safe}-{version}")


def _save_atomic(model, path):
    """Writes a .keras file under a temporary name (same folder), then renames it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = os.path.join(os.path.dirname(path), f".tmp-{os.getpid()}-{os.path.basename(path)}")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _load_cached(path):
    info_path = path[: -len(".keras")] + ".json"
    if not (os.path.exists(path) and os.path.exists(info_path)):
        return None
    with open(info_path, encoding="utf-8") as f:
        info = json.load(f)
    if info.get("recipe_version") != RECIPE_VERSION:
        return None
    with float32_policy():
        model = keras.models.load_model(path, compile=False)
    return model, info


class Judge:
    """A cached classifier: ``.model`` (logits), ``.info`` (accuracy ...), ``.features``."""

    def __init__(self, model, info, path):
        self.model = model
        self.info = info
        self.path = path
        self._features = None

    @property
    def test_accuracy(self):
        return self.info["test_accuracy"]

    def logits(self, images):
        return predict_logits(self.model, images)

    def predict(self, images):
        return np.argmax(self.logits(images), -1)

    def features(self, images):
        if self._features is None:
            self._features = feature_model(self.model)
        return features(self._features, images)


def _load_or_train(path, make_data, num_classes, description, train_kwargs):
    cached = _load_cached(path)
    if cached is not None:
        return Judge(*cached, path)
    x_train, y_train, x_test, y_test = make_data()
    logging.info("Training the %s classifier on %d images -> %s", description, len(x_train), path)
    print(
        f"Training the {description} classifier on {len(x_train)} images (cached in {path}).",
        flush=True,
    )
    start = time.perf_counter()
    model = train_classifier(
        x_train,
        y_train,
        num_classes,
        name=os.path.basename(path)[: -len(".keras")].replace("-", "_"),
        **train_kwargs,
    )
    seconds = time.perf_counter() - start
    info = {
        "description": description,
        "test_accuracy": accuracy(model, x_test, y_test),
        "train_examples": int(len(x_train)),
        "test_examples": int(len(x_test)),
        "num_classes": int(num_classes),
        "train_seconds": round(seconds, 2),
        "recipe_version": RECIPE_VERSION,
        **{k: v for k, v in train_kwargs.items() if isinstance(v, int | float | str)},
    }
    # The json first: a .keras file without its .json is not a cache hit.
    atomic_write_json(path[: -len(".keras")] + ".json", info)
    _save_atomic(model, path)
    print(f"  test accuracy {info['test_accuracy']:.4f} ({seconds:.1f} s).", flush=True)
    return Judge(model, info, path)


def _arrays(dataset, domain, split, data_dir, limit=None):
    from trainer import data as data_lib

    return data_lib.load_arrays(
        dataset, domain, split, data_dir=data_dir, image_size=CLASSIFIER_SIZE, limit=limit
    )


def class_classifier(
    dataset, domain, *, data_dir=None, cache_root=None, train_limit=None, **train_kwargs
):
    """The cached digit (class) classifier of ``domain``, trained on its train split if missing.

    Raises ValueError when the domain has no labels (image folders).
    """
    path = os.path.join(cache_dir(dataset, [domain], data_dir, cache_root), f"{domain}.keras")

    def make_data():
        x_train, y_train = _arrays(dataset, domain, "train", data_dir, train_limit)
        x_test, y_test = _arrays(dataset, domain, "test", data_dir)
        if y_train is None or y_test is None:
            raise ValueError(
                f"Domain {domain!r} of --dataset={dataset} has no class labels, so it has no "
                "class classifier: label metrics (transfer and UDA accuracy) need a labelled "
                "dataset such as --dataset=digits."
            )
        return x_train, y_train, x_test, y_test

    def num_classes():
        return 10 if dataset == "digits" else None

    k = num_classes()
    if k is None:
        # Labelled non-digit datasets: the class count comes from the data.
        cached = _load_cached(path)
        if cached is not None:
            return Judge(*cached, path)
        data = make_data()
        k = int(max(data[1].max(), data[3].max())) + 1
        return _load_or_train(path, lambda: data, k, f"{domain} class", train_kwargs)
    return _load_or_train(path, make_data, k, f"{domain} class", train_kwargs)


def domain_classifier(
    dataset, domain_a, domain_b, *, data_dir=None, cache_root=None, train_limit=None, **train_kwargs
):
    """The cached binary classifier telling ``domain_a`` (class 0) from ``domain_b`` (class 1).

    Trained on equal numbers of train images of both domains; needs no class labels.
    """
    path = os.path.join(
        cache_dir(dataset, [domain_a, domain_b], data_dir, cache_root),
        f"{domain_a}_vs_{domain_b}.keras",
    )

    def make_data():
        def both(split, limit):
            xa, _ = _arrays(dataset, domain_a, split, data_dir, limit)
            xb, _ = _arrays(dataset, domain_b, split, data_dir, limit)
            n = min(len(xa), len(xb))
            x = np.concatenate([xa[:n], xb[:n]])
            y = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])
            return x, y

        return (*both("train", train_limit), *both("test", None))

    # Telling the domains apart is easy: fewer images and epochs than digit classes need.
    kwargs = {"epochs": 2, **train_kwargs}
    if train_limit is None:
        train_limit = DOMAIN_TRAIN_LIMIT
    return _load_or_train(path, make_data, 2, f"{domain_a} vs {domain_b} domain", kwargs)


# -- InceptionV3 ---------------------------------------------------------------------------------

INCEPTION_SIZE = 299


class InceptionFeatures:
    """InceptionV3 average-pool features (2048-d) from a local weights file (never downloaded)."""

    def __init__(self, weights_path):
        if not os.path.isfile(weights_path):
            raise FileNotFoundError(
                f"--inception_weights={weights_path} does not exist: point it at an InceptionV3 "
                "weights file (no top), e.g. inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5; "
                "nothing is downloaded."
            )
        with float32_policy():
            self.model = keras.applications.InceptionV3(
                include_top=False,
                weights=weights_path,
                input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3),
                pooling="avg",
            )

    def __call__(self, images, batch_size=32):
        x = (
            to_float(images)
            if np.asarray(images).dtype == np.uint8
            else np.asarray(images, np.float32)
        )
        out = []
        for i in range(0, len(x), batch_size):
            # InceptionV3 expects [-1, 1] inputs, the range our images already have.
            batch = tf.image.resize(x[i : i + batch_size], (INCEPTION_SIZE, INCEPTION_SIZE))
            out.append(keras.ops.convert_to_numpy(self.model(batch, training=False)))
        return np.concatenate(out)


def prepare(dataset, domain_a, domain_b, *, data_dir=None, cache_root=None, **train_kwargs):
    """Trains (or loads) every judge evaluation of the pair needs; {"a", "b", "domain"} -> Judge.

    Test suites call this with a tiny budget (``epochs=1, train_limit=256``) right after
    building their data_dir, so the evaluations inside smoke trainings load instead of train.
    """
    kw = dict(data_dir=data_dir, cache_root=cache_root, **train_kwargs)
    return {
        "a": class_classifier(dataset, domain_a, **kw),
        "b": class_classifier(dataset, domain_b, **kw),
        "domain": domain_classifier(dataset, domain_a, domain_b, **kw),
    }

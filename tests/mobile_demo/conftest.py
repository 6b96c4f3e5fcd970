"""Tiny exported models for the mobile_demo tests.

Builds, once per test session and with the export stage itself, an export directory: an
unconditional path ``a2b`` (input ``image``) and a conditional path ``g`` (inputs ``image`` and
``target_domain`` one-hot, StarGAN-style) and a noise path ``z`` (declared U(-1, 1)) with two
image outputs (CoGAN-style), each as ``.onnx`` and every TFLite variant, plus ``metadata.json``.
"""

import os

import numpy as np
import pytest

IMAGE_SIZE = 16
DOMAINS = ("mnist", "digits", "mnist_m")


def _unconditional(keras, size):
    image = keras.Input((size, size, 3), name="image")
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(image)
    out = keras.layers.Conv2D(3, 3, padding="same", activation="tanh", name="translated")(h)
    return keras.Model(image, out, name="a2b")


def _conditional(keras, size, num_domains):
    image = keras.Input((size, size, 3), name="image")
    domain = keras.Input((num_domains,), name="target_domain")
    c = keras.layers.Dense(4)(domain)
    c = keras.layers.Reshape((1, 1, 4))(c)
    c = keras.layers.UpSampling2D(size)(c)
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(image)
    h = keras.layers.Concatenate()([h, c])
    out = keras.layers.Conv2D(3, 3, padding="same", activation="tanh", name="translated")(h)
    return keras.Model([image, domain], out, name="g")


def _noise(keras, size, dim=8):
    """A CoGAN-like path: noise z in, two images out."""
    z = keras.Input((dim,), name="z")
    heads = []
    for name in ("x_a", "x_b"):
        h = keras.layers.Dense(size * size * 3, activation="tanh")(z)
        heads.append(keras.layers.Reshape((size, size, 3), name=name)(h))
    return keras.Model(z, heads, name="z")


def declared_paths(keras, size=IMAGE_SIZE, domains=DOMAINS):
    """The tiny paths with their declarations (``trainer.methods.paths``): CoGAN's z is
    declared U(-1, 1), as CoGAN trains it."""
    from trainer.methods import paths as p

    return {
        "a2b": p.image_path(_unconditional(keras, size), domains[0], domains[1], "a2b"),
        "g": p.Path(
            _conditional(keras, size, len(domains)),
            inputs=(p.Image("image"), p.OneHot("target_domain", labels=tuple(domains))),
            outputs=(p.Image("translated"),),
            description="any domain",
        ),
        "z": p.Path(
            _noise(keras, size),
            inputs=(p.Noise("z", p.uniform(-1.0, 1.0)),),
            outputs=(p.Image("x_a"), p.Image("x_b")),
            description="noise to a pair of images",
        ),
    }


def _export(api, md, paths, root, run):
    kwargs = dict(formats=("tflite", "onnx"), run=run, allow_parity_failure=True, print_table=False)
    try:  # an export stage that reads the declarations itself
        return api.export_paths(paths, root, **kwargs)
    except (ValueError, TypeError, AttributeError) as e:
        if "Path" not in str(e) and "keras.Model" not in str(e):
            raise
    # One that takes bare models: export them, then store the declarations in metadata.json.
    kinds = {n: {d.name: d.kind for d in path.inputs} for n, path in paths.items()}
    infos = {n: {**path.info(), "input_kinds": kinds[n]} for n, path in paths.items()}
    api.export_paths({n: path.model for n, path in paths.items()}, root, infos=infos, **kwargs)
    meta = md.read_metadata(root)
    for artifact in meta["artifacts"]:
        path = paths[artifact["path"]]
        for key, decls in (("inputs", path.inputs), ("outputs", path.outputs)):
            by_name = {d.name: d for d in decls}
            artifact[key] = [
                by_name[s["name"]].to_metadata(s["shape"]) if s["name"] in by_name else s
                for s in artifact[key]
            ]
    md.write_metadata(root, meta)


def build_export_dir(root, size=IMAGE_SIZE, domains=DOMAINS):
    """Exports the tiny paths with the real export stage (``export.api.export_paths``)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from export import api
    from export import metadata as md

    keras.utils.set_random_seed(0)
    _export(
        api,
        md,
        declared_paths(keras, size, domains),
        root,
        md.run_fields("tiny", 1, None, size, domains),
    )
    return root


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory):
    """An export directory with tiny ``a2b`` and conditional ``g`` paths in every format."""
    return build_export_dir(str(tmp_path_factory.mktemp("tiny_export")))


@pytest.fixture
def test_image_png(tmp_path):
    """A deterministic IMAGE_SIZE x IMAGE_SIZE RGB PNG and its pixels."""
    from PIL import Image

    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    path = tmp_path / "input.png"
    Image.fromarray(pixels).save(path)
    return str(path), pixels

"""Tiny exported models shared by the export tests (built once per session)."""

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZE = 16


def tiny_generator(size=SIZE, name="gen_ab"):
    """The CycleGAN ResNet generator at its smallest: every converter trap in a few KB."""
    from trainer.networks import resnet_generator

    return resnet_generator(size, filters=4, n_blocks=1, name=name)


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """(export_dir, keras model, result) of a tiny generator exported as TFLite fp32 + ONNX."""
    import keras

    from export import api
    from export import metadata as metadata_lib

    keras.utils.set_random_seed(0)
    model = tiny_generator()
    export_dir = str(tmp_path_factory.mktemp("tiny_export"))
    run = metadata_lib.run_fields("cyclegan", 7, "ckpt-7", SIZE, ["mnist", "mnist_m"])
    info = {"a2b": {"source_domain": "mnist", "target_domain": "mnist_m", "description": "G_ab"}}
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8)
    result = api.export_paths(
        {"a2b": model},
        export_dir,
        formats=("tflite", "onnx"),
        infos=info,
        run=run,
        images={"a2b": (images, images)},
        print_table=False,
    )
    return export_dir, model, result

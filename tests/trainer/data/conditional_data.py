"""Helpers of the conditional data-kind tests: configs and a small digit data_dir."""

from trainer.config import Config, DataConfig, EvalConfig, HParams, TrainConfig


def data_config(method="test", hparams=None, **data):
    return Config(
        method=method,
        data=DataConfig(**{"image_size": 16, "batch_size": 4, **data}),
        train=TrainConfig(),
        eval=EvalConfig(),
        hparams=HParams(hparams or {}),
    )


def build_digits(root, domains=("mnist", "mnist_inverted")):
    """Builds the embedded digit ``domains`` into ``root`` (about 6 s each) and returns it."""
    from trainer import data

    for domain in domains:
        data.digits_builder(domain, str(root))
    return str(root)

"""Method hyperparameters: the declaration, the ones every method has, and their validation.

A method lists its hyperparameters in ``HPARAMS`` (``{name: HParam(...)}``); ``trainer.flags``
defines one ``--flag`` per name from the registry and ``TranslationModel.validate_config``
checks the values once, before anything is built.

``shape=True`` marks a hyperparameter that changes the shape (or the set) of the variables a
checkpoint holds: a run resumed with another value cannot restore, so the resume is refused
up front with the hyperparameter named (``trainer``'s ``check_model_dir`` reads the marks).
``choices`` lists the accepted values of a string hyperparameter.
"""

from typing import Any, NamedTuple

from trainer import losses

# One GAN vocabulary for every method: the losses of trainer.losses.adversarial.
GAN_LOSSES = tuple(losses.GAN_LOSSES)
NORMS = ("instance", "batch", "layer", "none")


class HParam(NamedTuple):
    """A method hyperparameter: its default, the help text of its ``--flag``, whether it
    changes variable shapes, and (for strings) the accepted values."""

    default: Any
    help: str
    shape: bool = False
    choices: tuple = ()


COMMON_HPARAMS = {
    "lr": HParam(2e-4, "Adam learning rate of every player."),
    "beta_1": HParam(0.5, "Adam beta_1."),
    "beta_2": HParam(0.999, "Adam beta_2."),
    "weight_decay": HParam(0.0, "Decoupled weight decay (AdamW) of every player; 0 = plain Adam."),
    "decay_start_step": HParam(
        -1,
        "Step where the learning rate starts decaying linearly to 0 at --train_steps; "
        "-1 = half of --train_steps, 0 or more than --train_steps = constant.",
    ),
    "ema_decay": HParam(
        0.0,
        "Decay of an exponential moving average of the translation paths' weights; 0 = off, "
        "0.999 is usual. Evaluation, sample grids and export use the averaged weights.",
    ),
    "filters": HParam(
        64, "Width (filters of the first layer) of generators and discriminators.", shape=True
    ),
    "gan_loss": HParam(
        "lsgan",
        "Adversarial loss: vanilla, lsgan, hinge or wgan (wgan needs --gradient_penalty or "
        "--clip_weights).",
        choices=GAN_LOSSES,
    ),
    "gradient_penalty": HParam(
        0.0,
        "Weight of the WGAN-GP gradient penalty in every discriminator update (0 = off; "
        "10 is the paper's).",
    ),
    "clip_weights": HParam(
        0.0,
        "Clip every discriminator weight to [-C, C] after each of its updates (0 = off; "
        "0.01 is the WGAN paper's).",
    ),
}


def validate(specs, config):
    """Checks ``config.hparams`` against ``specs``; ValueError naming the flag and the fix."""
    hp = config.hparams
    for key, spec in specs.items():
        if spec.choices and key in hp and hp[key] not in spec.choices:
            raise ValueError(
                f"Unknown --{key}={hp[key]!r} for {config.method}: choose one of "
                f"{', '.join(map(str, spec.choices))}."
            )
    for key in specs:
        value = hp.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        # Loss weights, rates and widths are never negative; a learning rate is positive.
        if (key.startswith("lambda") or key in ("beta_1", "beta_2", "weight_decay")) and value < 0:
            raise ValueError(f"--{key} must be >= 0, got {value}: a loss weight or rate.")
        if key == "lr" and value <= 0:
            raise ValueError(f"--lr must be > 0, got {value}.")
        if key == "ema_decay" and not 0 <= value < 1:
            raise ValueError(f"--ema_decay must be in [0, 1) (0 = off), got {value}.")
    if "gan_loss" not in specs:
        return
    for key in ("gradient_penalty", "clip_weights"):
        if hp[key] < 0:
            raise ValueError(f"--{key} must be >= 0 (0 = off), got {hp[key]}.")
    if hp.gan_loss == "wgan" and not (hp.gradient_penalty > 0 or hp.clip_weights > 0):
        raise ValueError(
            f"--gan_loss=wgan needs a Lipschitz constraint on the critic, and {config.method} "
            "has none on: add --gradient_penalty=10 (WGAN-GP) or --clip_weights=0.01 (the "
            "original WGAN), or choose --gan_loss=hinge, lsgan or vanilla."
        )


def shape_hparams(specs):
    """Names of the hyperparameters marked ``shape=True``."""
    return sorted(k for k, s in specs.items() if s.shape)

"""Name -> method class. One line per method; importing this imports every method."""

from trainer.methods.cgan import CGAN
from trainer.methods.cogan import CoGAN
from trainer.methods.combogan import ComboGAN
from trainer.methods.cyclegan import CycleGAN
from trainer.methods.direct import Direct
from trainer.methods.discogan import DiscoGAN
from trainer.methods.dtn import DTN
from trainer.methods.dualgan import DualGAN
from trainer.methods.gan import GAN
from trainer.methods.latent_explore import LatentExplore
from trainer.methods.pix2pix import Pix2Pix
from trainer.methods.stargan import StarGAN
from trainer.methods.unit import UNIT
from trainer.methods.unmt import UNMT
from trainer.methods.xgan import XGAN

METHODS = {
    "cyclegan": CycleGAN,
    "cogan": CoGAN,
    "unit": UNIT,
    "gan": GAN,
    "cgan": CGAN,
    "pix2pix": Pix2Pix,
    "stargan": StarGAN,
    "direct": Direct,
    "dtn": DTN,
    "discogan": DiscoGAN,
    "dualgan": DualGAN,
    "unmt": UNMT,
    "xgan": XGAN,
    "latent_explore": LatentExplore,
    "combogan": ComboGAN,
}


def get(name):
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(
            f"Unknown --method={name!r}: choose one of {', '.join(sorted(METHODS))}."
        ) from None


def build(config):
    """Builds the method named by ``config.method`` (call inside ``strategy.scope()``)."""
    return get(config.method)(config)

import numpy as np
import pytest

from trainer.networks import patch_discriminator, resnet_generator


def test_resnet_generator_matches_reference_parameter_count():
    # pytorch-CycleGAN-and-pix2pix ResnetGenerator(3, 3, 64, n_blocks=9, norm=instance).
    assert resnet_generator(256, n_blocks=9, filters=64).count_params() == 11_378_179


def test_patch_discriminator_matches_reference_parameter_count():
    # NLayerDiscriminator(3, 64, n_layers=3, norm=instance): the 70x70 PatchGAN.
    disc = patch_discriminator(256, n_layers=3, filters=64)
    assert disc.count_params() == 2_764_737
    assert disc.output_shape == (None, 30, 30, 1)


@pytest.mark.parametrize("size,blocks", [(32, 1), (64, 2), (48, 0)])
def test_generator_keeps_shape_and_range(size, blocks):
    gen = resnet_generator(size, filters=4, n_blocks=blocks)
    x = np.random.default_rng(0).uniform(-1, 1, (2, size, size, 3)).astype("float32")
    y = np.asarray(gen(x))
    assert y.shape == x.shape
    assert np.abs(y).max() <= 1.0
    assert gen.inputs[0].name == "image"


@pytest.mark.parametrize("size", [30, 12, 2])
def test_generator_rejects_image_sizes_it_cannot_take(size):
    with pytest.raises(ValueError, match="image_size"):
        resnet_generator(size, filters=4, n_blocks=1)


def test_discriminator_rejects_too_small_images():
    with pytest.raises(ValueError, match="disc_layers"):
        patch_discriminator(16, n_layers=3, filters=4)

"""ComboGAN (Anoosheh et al. 2018, arXiv 1712.06909): N domains, one encoder and decoder each.

Every CycleGAN generator is cut in two (``networks.combogan_nets``): domain i has an encoder
E_i (stem, downsampling, the first half of the residual blocks) and a decoder G_i (the other
half, upsampling, tanh head), and one PatchGAN D_i. Translating i -> j is G_j(E_i(x)), so N
domains need N encoders, N decoders and N discriminators, where pairwise CycleGANs would need
N(N - 1) generators: the parameters grow linearly in N.

The objective is CycleGAN's, through encoder/decoder pairs, for an example x of domain i
translated into domain j:
    L_G = LSGAN(D_j(G_j(E_i(x))))  +  lambda_cycle * |G_i(E_j(G_j(E_i(x)))) - x|_1
          [+ lambda_cycle * lambda_identity * |G_i(E_i(x)) - x|_1]
    L_D = LSGAN(D_j(x_j), D_j(G_j(E_i(x))))
The identity term (off by default) reconstructs x through its own domain's encoder and
decoder. ``--gan_loss`` and ``--gradient_penalty`` follow the shared GAN vocabulary.

Which pairs a step trains (the paper draws two domains uniformly at random per iteration and
trains that pair as a CycleGAN). Here a step draws a cyclic shift k uniformly from 1..N-1 and
translates every example of domain i into domain (i + k) mod N: each step trains N pairs at
once, every domain being the source of one pair and the target of another, so one step moves
the encoder, decoder and discriminator of every domain the batch holds. Each ordered pair
(i, j) is trained on the steps whose shift is j - i mod N, so over training every ordered pair
is drawn equally often, as with the paper's uniform draw. The batches are the ``multi_domain``
kind: each example carries its domain index, and the pipeline draws every domain equally often
(a small batch may miss a domain; that step then trains fewer pairs). Each example goes
through the networks of its own domain (``route``), one call per network on its examples.

D_j compares each translation into j with a real image of domain j drawn at random from the
same batch (its "real partner", so the gradient penalty interpolates between images of one
domain); a translation whose target domain has no example in the batch is left out of the
discriminator loss. CycleGAN's image history pool is not kept: translations into a domain
vary in number from batch to batch, so a pool per domain would hold images of uneven age.
The normalization choices leave out batch norm: a domain can be absent from a batch, and
batch statistics of no examples are undefined.

Paths: every ordered pair, ``<source>2<target>`` (e.g. ``mnist2mnist_m``) = G_target(E_source),
each a single-image path declaring its source and target domain; evaluation measures every
one (``trainer.eval.evaluate.pair_paths``).
"""

import itertools

import keras
import tensorflow as tf

from trainer import losses
from trainer.data.multi_domain import domain_labels
from trainer.methods.base import HParam, TranslationModel
from trainer.methods.paths import image_path
from trainer.networks import patch_discriminator
from trainer.networks.combogan_nets import resnet_decoder, resnet_encoder, split_blocks

# Normalizations that are defined on a routed part with no examples (see the module docstring).
NORMS = ("instance", "layer", "none")


def route(networks, x, index, training=True):
    """``networks[index[e]](x[e])`` for every example e, in the batch's order.

    Each network is called once, on the examples routed to it; a network with no example is
    not called (in a traced step, TensorFlow's fused CPU convolutions fail on an empty batch).
    """
    n = len(networks)
    index = tf.cast(index, tf.int32)
    parts = tf.dynamic_partition(x, index, n)
    positions = tf.dynamic_partition(tf.range(tf.shape(x)[0]), index, n)
    outputs = [_call_unless_empty(net, part, training) for net, part in zip(networks, parts)]
    return tf.dynamic_stitch(positions, outputs)


def _call_unless_empty(net, x, training):
    empty_shape = [0, *net.output.shape[1:]]
    return tf.cond(
        tf.shape(x)[0] > 0,
        lambda: tf.cast(net(x, training=training), net.output.dtype),
        lambda: tf.zeros(empty_shape, net.output.dtype),
    )


def shifted_targets(source, n_domains, shift):
    """The target domain (source + shift) mod N of every example."""
    return tf.math.floormod(tf.cast(source, tf.int32) + shift, n_domains)


def random_shift(n_domains, seed=None):
    """A cyclic shift drawn uniformly from 1..N-1 (never 0: no domain is its own target)."""
    if seed is None:
        return tf.random.uniform([], 1, n_domains, dtype=tf.int32)
    return tf.random.stateless_uniform([], seed, 1, n_domains, dtype=tf.int32)


def real_partners(source, target, seed=None):
    """For every example e, a random example of the batch whose domain is e's target.

    Returns ``(index [B], found [B] bool)``; where no example of the target domain is in the
    batch, ``found`` is False and the index is arbitrary.
    """
    source, target = tf.cast(source, tf.int32), tf.cast(target, tf.int32)
    match = tf.equal(target[:, None], source[None, :])  # [e, candidate]
    found = tf.reduce_any(match, axis=1)
    logits = tf.where(match, 0.0, -1e9)  # uniform over the matches
    if seed is None:
        pick = tf.random.categorical(logits, 1, dtype=tf.int32)
    else:
        pick = tf.random.stateless_categorical(logits, 1, seed, dtype=tf.int32)
    return pick[:, 0], found


class ComboGAN(TranslationModel):
    DATA = "multi_domain"
    CAPABILITIES = frozenset()
    HPARAMS = {
        "lambda_cycle": HParam(10.0, "Weight of the cycle-consistency L1 loss."),
        "lambda_identity": HParam(
            0.0,
            "Weight of the identity loss |G_i(E_i(x)) - x|_1, relative to --lambda_cycle "
            "(0 = off).",
        ),
        "gen_blocks": HParam(
            -1,
            "Residual blocks of one encoder + decoder (the encoder gets the first half); "
            "-1 = 9 at >= 256 px, else 6.",
            shape=True,
        ),
        "disc_layers": HParam(3, "Stride-2 layers of the PatchGAN discriminators.", shape=True),
        "norm": HParam(
            "instance",
            "Normalization in encoders, decoders and discriminators: instance, layer or none "
            "(not batch: a domain may have no example in a batch).",
            shape=True,
            choices=NORMS,
        ),
    }
    # Tiny settings for the tests' smoke runs (the contract test, the flagfile test). Width 8,
    # not 4: at 4 a stem channel can be near-constant on MNIST's black borders, and instance
    # norm then magnifies float rounding past the 1e-4 ONNX parity bound (seen at 1.6e-4).
    SMOKE_HPARAMS = {"filters": 8, "gen_blocks": 2, "disc_layers": 2}

    @classmethod
    def validate_config(cls, config):
        super().validate_config(config)  # choices, the GAN vocabulary
        domain_labels(config)  # at least two distinct domains (--domains, else domain_a/b)

    def build_networks(self):
        hp, size = self.hp, self.image_size
        self.domains = domain_labels(self.config)
        blocks = hp.gen_blocks if hp.gen_blocks >= 0 else (9 if size >= 256 else 6)
        enc_blocks, dec_blocks = split_blocks(blocks)
        common = dict(image_size=size, filters=hp.filters, norm=hp.norm)
        self.encoders = [
            resnet_encoder(**common, n_blocks=enc_blocks, name=f"enc_{d}") for d in self.domains
        ]
        self.decoders = [
            resnet_decoder(**common, n_blocks=dec_blocks, name=f"dec_{d}") for d in self.domains
        ]
        self.discs = [
            patch_discriminator(**common, n_layers=hp.disc_layers, name=f"disc_{d}")
            for d in self.domains
        ]
        # Lists of layers are not part of the checkpoint's object graph (their variables were
        # saved only through the optimizers, so a model rebuilt for export restored nothing):
        # each network is also an attribute, as in the two-domain methods.
        for role, nets in (("enc", self.encoders), ("dec", self.decoders), ("disc", self.discs)):
            for d, net in zip(self.domains, nets):
                setattr(self, f"{role}_{d}", net)

    @property
    def n_domains(self):
        return len(self.domains)

    def players(self):
        return {"gen": [*self.encoders, *self.decoders], "disc": list(self.discs)}

    def targets(self, source, seed=None):
        """This step's target of every example: one random cyclic shift for the batch."""
        return shifted_targets(source, self.n_domains, random_shift(self.n_domains, seed))

    def generator_terms(self, x, source, target):
        """The encoders' and decoders' named, weighted terms for x (of domains ``source``)
        translated into ``target``; also returns the translations."""
        hp = self.hp
        code = route(self.encoders, x, source)
        fake = route(self.decoders, code, target)
        back = route(self.decoders, route(self.encoders, fake, target), source)
        terms = {
            "adv": (1.0, self.gan.generator(route(self.discs, fake, target))),
            "cycle": (hp.lambda_cycle, losses.l1(back, x)),
        }
        if hp.lambda_identity > 0:
            identity = losses.l1(route(self.decoders, code, source), x)
            terms["identity"] = (hp.lambda_cycle * hp.lambda_identity, identity)
        return terms, fake

    def critic_terms(self, x, source, target, fake, seed=None):
        """Each D_j on the translations into j against real images of j from the batch."""
        partner, found = real_partners(source, target, seed)
        real = tf.gather(x, partner)

        def target_disc(images, training=True):
            return route(self.discs, images, target, training=training)

        mask = tf.cast(found, tf.float32)
        terms = self.adversarial_terms("target", target_disc, real, fake)
        return {name: (weight, loss * mask) for name, (weight, loss) in terms.items()}

    def train_step(self, batch):
        x = batch["x"]
        source = tf.cast(batch["domain"], tf.int32)
        target = self.targets(source)
        with tf.GradientTape() as tape:
            terms, fake = self.generator_terms(x, source, target)
            gen_loss, logs = self.weighted_loss("gen_loss", terms)
        self.step("gen", tape, gen_loss)

        fake = tf.stop_gradient(fake)
        with tf.GradientTape() as tape:
            terms = self.critic_terms(x, source, target, fake)
            disc_loss, disc_logs = self.weighted_loss("disc_loss", terms)
        self.step("disc", tape, disc_loss)
        return {**logs, **disc_logs}

    # -- inference ------------------------------------------------------------------------
    def pair_model(self, i, j):
        """G_j(E_i(image)): the functional model of path ``<domain i>2<domain j>``."""
        name = f"{self.domains[i]}2{self.domains[j]}"
        image = keras.Input((self.image_size, self.image_size, 3), name="image")
        out = self.decoders[j](self.encoders[i](image))
        out = keras.layers.Activation("linear", dtype="float32", name="translated")(out)
        return keras.Model(image, out, name=name)

    def translation_paths(self):
        paths = {}
        for i, j in itertools.permutations(range(self.n_domains), 2):
            source, target = self.domains[i], self.domains[j]
            path = image_path(self.pair_model(i, j), source, target, f"G_{target}(E_{source}(x))")
            path.extra = {"encoder": self.encoders[i].name, "decoder": self.decoders[j].name}
            paths[f"{source}2{target}"] = path
        return paths

    def sample_images(self, batch):
        """One row per source image: the image, then its decoding by every domain's decoder
        (its own domain's: the reconstruction)."""
        x = batch["x"][:8]
        source = tf.cast(batch["domain"][:8], tf.int32)
        code = route(self.encoders, x, source, training=False)
        columns = [x] + [dec(code, training=False) for dec in self.decoders]
        table = tf.stack(columns, axis=1)  # [n, 1 + N, S, S, 3]
        return {"translate": [table[i] for i in range(int(x.shape[0]))]}

"""StarGAN (Choi et al. 2018): one generator G(x, c) translates an image into any of D domains.

The paper's choices, kept as defaults:
- G(x, c): the target-domain one-hot c tiled over the image and concatenated to its channels
  (``networks.stargan_generator``); D has an adversarial PatchGAN head D_src and a
  domain-classification head D_cls (``networks.stargan_discriminator``; its stride-2 layers
  are capped by the image size so the patch map stays at least 2x2).
- Objective: WGAN-GP (``--gan_loss=wgan --gradient_penalty=10``), domain classification
  ``--lambda_cls=1``, reconstruction ``--lambda_rec=10``:
      L_D = -D_src(x) + D_src(G(x, c)) + lambda_cls * CE(D_cls(x), c') + lambda_gp * GP
      L_G = -D_src(G(x, c)) + lambda_cls * CE(D_cls(G(x, c)), c)
            + lambda_rec * |x - G(G(x, c), c')|_1
  with c' the source domain and c a target drawn at random per example.
- Not in the paper, off by default: ``--residual_output`` (G predicts a change to its input,
  see ``networks.stargan_nets.ResidualOutput``), ``--lambda_identity`` (an L1 term
  |G(x, c') - x|, weighted relative to lambda_rec, asking G to leave an image alone when
  the target is its own domain), ``--disc_noise`` (instance noise on D's inputs) and
  ``--cycle_noise`` (noise on G(x, c) before the reconstruction pass, against steganography),
  ``--diff_augment`` (shifts and cutout of every image D sees, ``methods.diff_augment``).
- ``--n_critic=5``: one training step is five critic updates, each on its own batch, and one
  generator update on the last of them (the data pipeline hands over the five batches
  concatenated). Adam 1e-4, (0.5, 0.999); both learning rates decay linearly to 0 over the
  second half of ``--train_steps`` (D's schedule counts its n_critic updates per step).

Mask vector (training on several datasets whose label sets differ): ``--domain_groups=
"dataset=mnist,mnist_m,digits;style=mnist_inverted,mnist_colored,mnist_thick"``. Each example
is labelled only within its own group (its dataset); the condition is [c_1, c_2, m] with m the
one-hot of the group (G derives m from c, see ``GroupMask``); targets are drawn within the
example's own group, and the classification loss on D_cls uses only the logits of that group
(``losses.group_softmax_cross_entropy``), as in the paper. The exported condition input lists every label in
order with its group, so a runtime picks one label (``--target_domain=NAME``) and sets its
entry; the graph adds the mask.

Path ``translate``: (``image`` [N,S,S,3] in [-1, 1], ``target_domain`` one-hot [N,D]) ->
``translated``.
"""

import tensorflow as tf

from trainer import losses
from trainer.data.multi_domain import domain_groups
from trainer.methods.base import HParam, TranslationModel
from trainer.methods.diff_augment import diff_augment, parse_policy, with_noise
from trainer.methods.hparams import GAN_LOSSES
from trainer.methods.paths import Image, OneHot, Path
from trainer.networks.stargan_nets import stargan_discriminator, stargan_generator


def random_targets(labels, group_of_label, group_offsets, group_sizes, seed=None):
    """A uniformly random label per example within the group of ``labels`` [B]."""
    labels = tf.cast(labels, tf.int32)
    group = tf.gather(tf.cast(group_of_label, tf.int32), labels)
    size = tf.gather(tf.constant(group_sizes, tf.int32), group)
    offset = tf.gather(tf.constant(group_offsets, tf.int32), group)
    shape = tf.shape(labels)
    u = tf.random.uniform(shape) if seed is None else tf.random.stateless_uniform(shape, seed)
    pick = tf.minimum(tf.cast(u * tf.cast(size, tf.float32), tf.int32), size - 1)
    return offset + pick


class StarGAN(TranslationModel):
    DATA = "multi_domain"
    CAPABILITIES = frozenset({"conditional"})
    HPARAMS = {
        "lr": HParam(1e-4, "Adam learning rate of G and D (StarGAN: 1e-4)."),
        "filters": HParam(64, "Width of the first layer of G and D.", shape=True),
        "gan_loss": HParam(
            "wgan",
            "Adversarial loss: wgan (StarGAN's, needs --gradient_penalty or --clip_weights), "
            "lsgan, vanilla or hinge.",
            choices=GAN_LOSSES,
        ),
        "gradient_penalty": HParam(
            10.0, "WGAN-GP weight lambda_gp (0 = off; --gan_loss=wgan needs it > 0)."
        ),
        "lambda_cls": HParam(1.0, "Weight of the domain-classification loss."),
        "lambda_rec": HParam(10.0, "Weight of the reconstruction (cycle) L1 loss."),
        "residual_output": HParam(
            False,
            "G predicts a change to its input, clip(x + 2 tanh(h), -1, 1), instead of a new "
            "image tanh(h): the identity at initialisation, so the digit is kept unless a "
            "loss asks to change it (off in the paper).",
        ),
        "gen_skips": HParam(
            False,
            "U-Net skip connections in G: each upsampling stage is concatenated with the "
            "encoder's map of its resolution, so the digit's strokes need not pass the "
            "bottleneck (off in the paper).",
            shape=True,
        ),
        "gen_condition": HParam(
            "input",
            "How G sees the target: input (the paper's: the one-hot tiled and concatenated to "
            "the image) or norm (also a learned scale and shift per target after each "
            "instance norm of G's stem, downsampling and upsampling stages; the first "
            "instance norm otherwise removes the tiled one-hot everywhere but the border).",
            choices=("input", "norm"),
            shape=True,
        ),
        "lambda_identity": HParam(
            0.0,
            "Weight of the identity loss |G(x, c_x) - x|_1 (target = the source domain), "
            "relative to --lambda_rec (0 = off, as in the paper).",
        ),
        "disc_noise": HParam(
            0.0,
            "Std of Gaussian noise added to every image D sees, real and translated, in D's "
            "and G's updates (instance noise; 0 = off, as in the paper). D_cls learns the "
            "domains only from real images: without noise G can reach its target class "
            "with a faint pattern the other domains' images never show.",
        ),
        "diff_augment": HParam(
            "",
            "DiffAugment policy of every image D sees, real and translated, in D's and G's "
            "updates: a comma-separated subset of translation,cutout ('' = off, as in the "
            "paper). D_cls learns the domains from real images only; shifted and partly "
            "hidden, it must read their look rather than a few pixels G can copy.",
        ),
        "cycle_noise": HParam(
            0.0,
            "Std of Gaussian noise added to G(x, c) before it is translated back for the "
            "reconstruction loss (0 = off, as in the paper). Without it G can pass the source "
            "digit back through a low-amplitude pattern and redraw the visible one freely "
            "(steganography, arXiv 1712.02950); noise the size of that pattern erases it, so "
            "the digit must be carried by the visible strokes (the defense of Bashkirova et "
            "al., NeurIPS 2019).",
        ),
        "n_critic": HParam(5, "Critic updates per generator update (one training step)."),
        "gen_blocks": HParam(6, "Residual blocks of the generator.", shape=True),
        "n_down": HParam(2, "Stride-2 downsamplings of the generator.", shape=True),
        "disc_layers": HParam(
            6, "Stride-2 layers of the discriminator, capped so its map is >= 2x2.", shape=True
        ),
        "domain_groups": HParam(
            "",
            "Mask-vector training: label groups 'NAME=DOMAIN,...;NAME=DOMAIN,...' (each "
            "example is labelled within its group only); '' = one group, --domains.",
            shape=True,
        ),
    }
    # Tiny settings for the tests' smoke runs (the contract test, the flagfile test).
    SMOKE_HPARAMS = {"filters": 4, "gen_blocks": 1, "n_down": 1, "disc_layers": 2, "n_critic": 1}

    @classmethod
    def network_switches(cls, hparams):
        # The residual output adds no variable, but the weights trained for one output
        # formula are meaningless under the other: a resume across it is refused.
        return {
            **super().network_switches(hparams),
            "residual_output": bool(hparams.get("residual_output", False)),
        }

    @classmethod
    def validate_config(cls, config):
        super().validate_config(config)  # choices, the GAN vocabulary
        hp = config.hparams
        if hp.n_critic < 1:
            raise ValueError(f"--n_critic must be >= 1, got {hp.n_critic}.")
        domain_groups(config)
        parse_policy(hp.diff_augment)

    def build_networks(self):
        hp, size = self.hp, self.image_size
        self.groups = domain_groups(self.config)
        self.labels = tuple(label for _, ls in self.groups for label in ls)
        sizes = [len(ls) for _, ls in self.groups]
        self.group_sizes = tuple(sizes)
        self.group_offsets = tuple(sum(sizes[:i]) for i in range(len(sizes)))
        self.group_of_label = tf.constant(
            [g for g, n in enumerate(sizes) for _ in range(n)], tf.int32
        )
        self.gen = stargan_generator(
            size,
            sizes,
            filters=hp.filters,
            n_down=hp.n_down,
            n_blocks=hp.gen_blocks,
            residual_output=hp.residual_output,
            skips=hp.gen_skips,
            condition=hp.gen_condition,
            name="gen",
        )
        self.disc = stargan_discriminator(
            size, len(self.labels), filters=hp.filters, n_layers=hp.disc_layers, name="disc"
        )

    def players(self):
        return {"gen": [self.gen], "disc": [self.disc]}

    def updates_per_step(self):
        """D is updated ``n_critic`` times per step: its schedule counts those updates, so
        both rates decay over the same training steps, as in the paper."""
        return {"disc": self.hp.n_critic}

    def one_hot(self, labels):
        return tf.one_hot(tf.cast(labels, tf.int32), len(self.labels), dtype=tf.float32)

    def targets(self, source, seed=None):
        return random_targets(
            source, self.group_of_label, self.group_offsets, self.group_sizes, seed
        )

    def disc_input(self, images):
        """What D sees of ``images``: with --diff_augment, freshly shifted and cut out; with
        --disc_noise, a fresh Gaussian noise added."""
        return with_noise(diff_augment(images, self.hp.diff_augment), self.hp.disc_noise)

    def cycle_input(self, fake):
        """What G translates back for the reconstruction: with --cycle_noise, G(x, c) plus a
        fresh Gaussian noise (gradients still reach the forward pass)."""
        return with_noise(fake, self.hp.cycle_noise)

    def critic_terms(self, x, source, fake):
        """D_src's GAN loss (and gradient penalty) on (x, fake), D_cls's loss on x's domain."""
        hp = self.hp
        x, fake = self.disc_input(x), self.disc_input(fake)

        def d_src(images, training=True):
            return self.disc(images, training=training)[0]

        _, real_cls = self.disc(x, training=True)
        return {
            **self.adversarial_terms("d", d_src, x, fake),
            "d_cls": (
                hp.lambda_cls,
                losses.group_softmax_cross_entropy(source, real_cls, self.group_of_label),
            ),
        }

    def generator_terms(self, x, source, target):
        hp = self.hp
        fake = self.gen([x, self.one_hot(target)], training=True)
        fake_src, fake_cls = self.disc(self.disc_input(fake), training=True)
        back = self.gen([self.cycle_input(fake), self.one_hot(source)], training=True)
        terms = {
            "g_adv": (1.0, self.gan.generator(fake_src)),
            "g_cls": (
                hp.lambda_cls,
                losses.group_softmax_cross_entropy(target, fake_cls, self.group_of_label),
            ),
            "rec": (hp.lambda_rec, losses.l1(back, x)),
        }
        if hp.lambda_identity > 0:
            same = self.gen([x, self.one_hot(source)], training=True)
            terms["identity"] = (hp.lambda_rec * hp.lambda_identity, losses.l1(same, x))
        return terms

    def train_step(self, batch):
        n = self.hp.n_critic
        size = self.image_size
        xs = tf.reshape(batch["x"], [n, -1, size, size, 3])
        sources = tf.reshape(tf.cast(batch["domain"], tf.int32), [n, -1])
        for i in range(n):
            x, source = xs[i], sources[i]
            target = self.targets(source)
            fake = tf.stop_gradient(self.gen([x, self.one_hot(target)], training=True))
            with tf.GradientTape() as tape:
                terms = self.critic_terms(x, source, fake)
                disc_loss, d_logs = self.weighted_loss("disc_loss", terms)
            self.step("disc", tape, disc_loss)

        with tf.GradientTape() as tape:
            terms = self.generator_terms(x, source, target)
            gen_loss, g_logs = self.weighted_loss("gen_loss", terms)
        self.step("gen", tape, gen_loss)
        return {**g_logs, **d_logs}

    # -- inference ------------------------------------------------------------------------
    def condition(self, target, n):
        """[n, D] one-hot of ``target`` (a label name or index)."""
        if isinstance(target, str):
            if target not in self.labels:
                raise ValueError(
                    f"Unknown target domain {target!r}: choose one of {', '.join(self.labels)}."
                )
            target = self.labels.index(target)
        return self.one_hot(tf.fill([n], int(target)))

    def translate(self, x, direction):
        """G(x, c) for ``direction`` = a target domain name (or index), or 'translate:NAME'."""
        if isinstance(direction, str) and direction.startswith("translate:"):
            direction = direction.split(":", 1)[1]
        x = tf.convert_to_tensor(x, tf.float32)
        return self.gen([x, self.condition(direction, tf.shape(x)[0])], training=False)

    def translation_paths(self):
        groups = self.groups if len(self.groups) > 1 else ()
        return {
            "translate": Path(
                model=self.gen,
                inputs=(Image("image"), OneHot("target_domain", labels=self.labels, groups=groups)),
                outputs=(Image("translated"),),
                description="G(x, c): the image translated into the one-hot target domain c",
                extra={"domains": list(self.labels)},
            )
        }

    def sample_images(self, batch):
        """One row per source image: the image, then its translation into every domain."""
        x = batch["x"][:8]
        n = tf.shape(x)[0]
        columns = [x] + [
            self.gen([x, self.condition(i, n)], training=False) for i in range(len(self.labels))
        ]
        table = tf.stack(columns, axis=1)  # [n, 1 + D, S, S, 3]
        return {"translate": [table[i] for i in range(int(x.shape[0]))]}

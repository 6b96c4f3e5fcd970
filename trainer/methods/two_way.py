"""What the two-way methods (a2b and b2a paths) share at inference: sample rows, and for the
encoder -> code -> decoder family (UNIT, UNMT, XGAN) the paths themselves."""

import keras


def cycle_samples(batch, ab, ba):
    """Sample rows x, x translated, x translated back, for each direction; ``ab`` and ``ba``
    map a batch of images to the other domain (inference mode)."""
    x_a, x_b = batch["x_a"], batch["x_b"]
    x_ab, x_ba = ab(x_a), ba(x_b)
    return {"a2b": [x_a, x_ab, ba(x_ab)], "b2a": [x_b, x_ba, ab(x_ba)]}


class EncoderDecoderPaths:
    """For a TranslationModel with per-domain encoders ``enc_a``, ``enc_b`` (one object when
    the encoder is shared) and decoders ``dec_a``, ``dec_b``: ``a2b`` = dec_b(enc_a(x)),
    ``b2a`` = dec_a(enc_b(x)), on the code the encoder returns (a posterior's mean: no
    sampling at inference), and the sample rows with each domain's reconstruction.
    ``PATH_DESCRIPTIONS`` names the two paths in the export's metadata."""

    PATH_DESCRIPTIONS = ("E_a -> D_b", "E_b -> D_a")

    def encoder_decoder_path(self, encoder, decoder, name):
        image = keras.Input((self.image_size, self.image_size, 3), name="image")
        out = decoder(encoder(image))
        out = keras.layers.Activation("linear", dtype="float32", name="translated")(out)
        return keras.Model(image, out, name=name)

    def translation_paths(self):
        return self.two_way_paths(
            self.encoder_decoder_path(self.enc_a, self.dec_b, "a2b"),
            self.encoder_decoder_path(self.enc_b, self.dec_a, "b2a"),
            *self.PATH_DESCRIPTIONS,
        )

    def sample_images(self, batch):
        def translate(encoder, decoder):
            return lambda x: decoder(encoder(x, training=False), training=False)

        rows = cycle_samples(
            batch, translate(self.enc_a, self.dec_b), translate(self.enc_b, self.dec_a)
        )
        rows["recon"] = [
            translate(self.enc_a, self.dec_a)(batch["x_a"]),
            translate(self.enc_b, self.dec_b)(batch["x_b"]),
        ]
        return rows

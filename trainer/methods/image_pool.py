"""History of generated images for discriminator updates (Shrivastava et al. 2017).

Discriminators see a mix of current and past translations, which damps oscillation. The pool
lives in variables so it is checkpointed with the model and runs inside tf.function. Under a
distribution strategy each replica keeps its own pool (SyncOnRead); a checkpoint stores the
first replica's pool and a restore gives it to every replica.
"""

import tensorflow as tf


class ImagePool(tf.Module):
    def __init__(self, size, image_shape, name="image_pool"):
        super().__init__(name=name)
        self.size = int(size)
        if self.size <= 0:
            return
        sync = dict(
            trainable=False,
            synchronization=tf.VariableSynchronization.ON_READ,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        self.images = tf.Variable(tf.zeros([self.size, *image_shape]), name="images", **sync)
        self.count = tf.Variable(0, dtype=tf.int32, name="count", **sync)

    def query(self, images):
        """Returns a batch like ``images``: while filling, the images themselves; once full,
        each image is with probability 1/2 swapped for a stored one (which it replaces)."""
        if self.size <= 0:
            return images
        images = tf.cast(images, tf.float32)
        batch = tf.shape(images)[0]
        # Work on a tensor copy and assign once: SyncOnRead variables take whole assignments only.
        pool = self.images.read_value()
        count = self.count.read_value()
        out = tf.TensorArray(tf.float32, size=batch, element_shape=images.shape[1:])
        for i in tf.range(batch):
            image = images[i]
            if count < self.size:
                pool = tf.tensor_scatter_nd_update(pool, [[count]], image[None])
                count += 1
                out = out.write(i, image)
            elif tf.random.uniform([]) < 0.5:
                idx = tf.random.uniform([], 0, self.size, dtype=tf.int32)
                out = out.write(i, pool[idx])
                pool = tf.tensor_scatter_nd_update(pool, [[idx]], image[None])
            else:
                out = out.write(i, image)
        self.images.assign(pool)
        self.count.assign(count)
        return out.stack()

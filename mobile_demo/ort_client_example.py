"""Calling an exported path from another service with only onnxruntime and numpy.

The README's "from another service" snippet, kept here so a test runs it. ``images`` are uint8
RGB arrays [N, S, S, 3] with S = the metadata's image_size, prepared as in training: the
shorter side resized to S with antialiased bicubic filtering, then the centre square
(``trainer.imaging.load(path, S)`` does exactly that with Pillow alone; the artifact's
``preprocessing`` entry in metadata.json describes it).
"""

import json

import numpy as np
import onnxruntime as ort

# --- snippet start
meta = json.load(open("export/metadata.json"))
spec = next(a for a in meta["artifacts"] if a["file"] == "a2b.onnx")
session = ort.InferenceSession("export/a2b.onnx")  # thread-safe: create once, share it


def translate(images, target_domain=None):
    feeds = {"image": images.astype(np.float32) / 127.5 - 1.0}  # uint8 -> [-1, 1]
    for i in spec["inputs"]:  # conditional paths also take a one-hot target domain
        if i["kind"] == "onehot":
            feeds[i["name"]] = np.eye(len(i["labels"]), dtype=np.float32)[
                [i["labels"].index(target_domain)] * len(images)
            ]
    y = session.run(None, feeds)[0]  # tanh output in [-1, 1]
    return np.clip(np.round((y + 1.0) * 127.5), 0, 255).astype(np.uint8)


# --- snippet end

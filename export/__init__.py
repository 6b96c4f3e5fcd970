"""Export stage: translation paths -> TFLite / ONNX / .keras / SavedModel, parity-checked.

- ``export.api.export_model_dir``: a trained model_dir -> artifacts + metadata.json.
- ``export.main``: the CLI (``python -m export.main --model_dir=DIR``).
- ``export.runtime.Translator``: runs an .onnx / .tflite artifact without TensorFlow.
- ``export.run``: translate an image or a folder from the command line.

Nothing is imported here, so ``export.runtime`` stays free of TensorFlow.
"""

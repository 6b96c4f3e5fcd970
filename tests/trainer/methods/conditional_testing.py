"""Helpers of the conditional-family tests: tiny configs, moved variables, declared exports."""

import numpy as np

from trainer.config import Config, DataConfig, EvalConfig, HParams, TrainConfig


def make_config(cls, method, image_size=16, batch_size=2, data=None, **hparams):
    """A Config for ``cls`` with its defaults, overridden by ``hparams`` and ``data`` fields."""
    values = {k: s.default for k, s in cls.hparam_specs().items()}
    values.update(hparams)
    return Config(
        method=method,
        data=DataConfig(image_size=image_size, batch_size=batch_size, **(data or {})),
        train=TrainConfig(train_steps=100),
        eval=EvalConfig(),
        hparams=HParams(values),
    )


def snapshot(networks):
    return [np.array(v) for net in networks for v in net.trainable_variables]


def moved(before, networks):
    """Indices of variables of ``networks`` that differ from ``before``."""
    after = snapshot(networks)
    return [i for i, (a, b) in enumerate(zip(before, after)) if not np.array_equal(a, b)]


def assert_every_player_moves(model, batch, may_stay=()):
    """One train_step changes every trainable variable of every player.

    ``may_stay``: suffixes of variable paths that get no gradient by construction (the output
    bias of a WGAN critic cancels between real and fake).
    """
    before = {name: snapshot(nets) for name, nets in model.players().items()}
    out = model.train_step(batch)
    for name, nets in model.players().items():
        variables = [v for net in nets for v in net.trainable_variables]
        changed = set(moved(before[name], nets))
        stayed = [v.path for i, v in enumerate(variables) if i not in changed]
        unexpected = [p for p in stayed if not p.endswith(tuple(may_stay))]
        assert changed and not unexpected, f"player {name}: unchanged {unexpected}"
    for key, value in out.items():
        assert np.isfinite(float(value)), (key, value)
    return out


def export_declared(paths, export_dir, formats=("tflite", "onnx")):
    """Exports ``{name: Path}`` through ``export.api.export_paths`` with its declarations.

    Passes the Path objects when the export stage takes them, else the models with the
    declared input kinds and labels as path infos.
    """
    from export import api
    from export import metadata as metadata_lib

    first = next(iter(paths.values()))
    size = first.model.inputs[0].shape[1] or 0
    run = metadata_lib.run_fields("test", 1, "ckpt-1", size, ())
    try:
        return api.export_paths(paths, export_dir, formats=formats, run=run, print_table=False)
    except (ValueError, TypeError, AttributeError) as e:
        if "keras.Model" not in str(e) and "Path" not in str(e):
            raise
    infos = {}
    for name, path in paths.items():
        infos[name] = {
            **path.info(),
            "input_kinds": {s.name: s.kind for s in path.inputs},
            "input_labels": {s.name: list(s.labels) for s in path.inputs if s.kind == "onehot"},
        }
    models = {name: path.model for name, path in paths.items()}
    return api.export_paths(
        models, export_dir, formats=formats, infos=infos, run=run, print_table=False
    )


def assert_fp32_parity(result):
    """fp32 TFLite and ONNX artifacts passed parity (1e-3)."""
    fp32 = [a for a in result["artifacts"] if a["precision"] == "fp32"]
    assert {a["format"] for a in fp32} >= {"tflite", "onnx"}, [a["file"] for a in fp32]
    for a in fp32:
        assert a["status"] == "ok", (a["file"], a.get("parity"), a.get("error"))

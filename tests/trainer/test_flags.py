import os

import pytest
from absl import flags

from trainer import flagfiles
from trainer import flags as flags_lib

FLAGS = flags.FLAGS
flags_lib.define_method_flags()


@pytest.fixture
def parse():
    def _parse(*args):
        FLAGS.unparse_flags()
        FLAGS(["prog", *flags_lib.resolve_flagfile_args(list(args))])
        return flags_lib.config_from_flags()

    yield _parse
    FLAGS.unparse_flags()


def test_defaults_give_a_valid_config(parse):
    config = parse()
    assert config.method == "cyclegan"
    assert config.hparams.lambda_cycle == 10.0
    assert config.train.export_formats == ("tflite", "onnx", "keras", "savedmodel")


def test_method_hyperparameters_come_from_flags(parse):
    config = parse("--lambda_cycle=3", "--pool_size=0", "--export_formats=none")
    assert config.hparams.lambda_cycle == 3.0 and config.hparams.pool_size == 0
    assert config.train.export_formats == ()


def test_bare_flagfile_name_resolves_to_shipped_config(parse, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no cyclegan.flags here
    config = parse("--flagfile=cyclegan.flags")
    assert config.method == "cyclegan" and config.data.domain_b == "mnist_m"
    assert config.hparams.filters == 32
    # Later flags override the flagfile.
    assert parse("--flagfile=cyclegan", "--train_steps=7").train.train_steps == 7


def test_flagfile_in_working_directory_wins(parse, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cyclegan.flags").write_text("--train_steps=11\n")
    assert parse("--flagfile=cyclegan.flags").train.train_steps == 11


def test_unknown_flagfile_lists_shipped_ones():
    with pytest.raises(SystemExit, match="cyclegan.flags"):
        flags_lib.resolve_flagfile_args(["--flagfile=nope.flags"])


def test_nested_flagfile_is_included_in_place_and_later_lines_win(parse, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sub = tmp_path / "recipes"
    sub.mkdir()
    # Beside the including file first (not the working directory), then the shipped configs.
    (sub / "base.flags").write_text("# a comment\n--train_steps=11\n--lr=0.5\n\n")
    (sub / "long.flags").write_text(
        "--flagfile=base.flags\n--train_steps=99\n--flagfile=cyclegan.flags\n--lr=0.25\n"
    )
    config = parse(f"--flagfile={sub / 'long.flags'}", "--pool_size=3")
    # cyclegan.flags (shipped) came after --train_steps=99, so its value wins; --lr after it.
    shipped = shipped_values("cyclegan.flags")
    assert config.train.train_steps == int(shipped["train_steps"])
    assert config.hparams.lr == 0.25 and config.hparams.pool_size == 3
    values = flagfiles.flagfile_values(str(sub / "long.flags"))
    assert values["lr"] == "0.25" and values["method"] == "cyclegan"


def shipped_values(name):
    """{flag: value} of a shipped flagfile, nested flagfiles followed."""
    return flagfiles.flagfile_values(os.path.join(flags_lib.CONFIG_DIR, name))


def test_shipped_long_recipes_are_the_main_job_and_what_they_change():
    main = shipped_values("unit.flags")
    for name, changed in [
        ("unit_long.flags", {"train_steps": "7500"}),
        ("unit_uda.flags", {"uda": "true", "domain_b": "digits", "train_steps": "3000"}),
        ("unit_uda_long.flags", {"uda": "true", "train_steps": "10000"}),
    ]:
        recipe = shipped_values(name)
        assert changed.items() <= recipe.items(), name
        network = ("filters", "n_down", "lambda_gan", "lambda_cycle_b", "lr", "jit_compile")
        assert all(recipe[k] == main[k] for k in network), name


def test_cyclegan_long_is_cyclegan_at_half_width_for_longer():
    base, recipe = shipped_values("cyclegan.flags"), shipped_values("cyclegan_long.flags")
    assert {"filters": "16", "train_steps": "7000"}.items() <= recipe.items()
    assert base["filters"] == "32"
    same = ("method", "domain_a", "domain_b", "batch_size", "gen_blocks", "disc_layers")
    same += ("lambda_cycle", "lambda_identity", "pool_size", "lr")
    assert all(recipe[k] == base[k] for k in same)


def test_flagfile_loops_and_missing_includes_are_named(tmp_path):
    (tmp_path / "a.flags").write_text("--flagfile=b.flags\n")
    (tmp_path / "b.flags").write_text("--train_steps=2\n--flagfile=a.flags\n")
    with pytest.raises(SystemExit, match=r"loop: a.flags -> b.flags -> a.flags"):
        flags_lib.resolve_flagfile_args([f"--flagfile={tmp_path / 'a.flags'}"])
    (tmp_path / "c.flags").write_text("--flagfile=nowhere.flags\n")
    with pytest.raises(SystemExit, match=r"'nowhere.flags' \(included by c.flags\)"):
        flagfiles.flagfile_values(str(tmp_path / "c.flags"))


def test_every_shipped_flagfile_parses(parse):
    for name in sorted(os.listdir(flags_lib.CONFIG_DIR)):
        if name.endswith(".flags"):
            parse(f"--flagfile={name}")


@pytest.mark.parametrize(
    "args,message",
    [
        (["--method=pix3pix"], "Unknown --method='pix3pix': choose one of"),
        (["--strategy=gpu"], "strategy"),
        (["--batch_size=0"], "--batch_size must be >= 1"),
        (["--export_formats=tflite,zip"], "Unknown --export_formats zip"),
        (["--export_formats=none,onnx"], "cannot be combined"),
        (["--checkpoint_every=0"], "--checkpoint_every must be >= 1"),
        (["--model_dir=runs/unit[lr=1e-4]"], "contains a square bracket"),
        (["--lambda_cycle=-1"], "--lambda_cycle must be >= 0"),
        (["--lr=0"], "--lr must be > 0"),
        (["--method=unit", "--lambda_gan=-0.5"], "--lambda_gan must be >= 0"),
        (["--gan_loss=foo"], None),
    ],
)
def test_bad_flag_values_are_named(parse, args, message):
    if message is None:
        # Validated when the method builds its losses.
        from trainer.methods import build

        with pytest.raises(ValueError, match="--gan_loss"):
            build(parse(*args))
        return
    with pytest.raises((ValueError, flags.IllegalFlagValueError), match=message):
        parse(*args)


def test_help_groups_hold_every_project_flag():
    grouped = {name for _, names in flags_lib.HELP_GROUPS for name in names}
    hparams = flags_lib._all_method_flag_names()
    project = {f.name for f in FLAGS.flags_by_module_dict()[flags_lib.__name__]} - hparams
    assert project <= grouped, sorted(project - grouped)
    text = flags_lib.help_text()
    for name in project:
        assert f"--{name}" in text
    from trainer.methods import METHODS

    shared = text.split("hyperparameters of every method:")[1].split("\n\n")[0]
    for method, cls in METHODS.items():
        section = text.split(f"--method={method} hyperparameters")[1].split("\n\n")[0]
        for key, spec in cls.hparam_specs().items():
            shown = f"--{key}={spec.default}\n" if spec.default not in (None, "") else f"--{key}\n"
            assert shown in section + "\n" or shown in shared + "\n", (method, shown)


def test_cogan_long_is_cogan_uda_for_the_released_codes_length():
    base, recipe = shipped_values("cogan_uda.flags"), shipped_values("cogan_long.flags")
    assert {"train_steps": "10000", "uda": "true", "domain_b": "digits"}.items() <= recipe.items()
    assert base["train_steps"] == "3000"
    same = ("method", "domain_a", "batch_size", "filters", "disc_norm", "lambda_pair_feat")
    same += ("lambda_cls", "lr", "invert_steps")
    assert all(recipe[k] == base[k] for k in same)

"""The Bazel build (WORKSPACE, BUILD): builds every target offline and runs one test through it.

Needs Debian's bazel-bootstrap (Bazel 4.2.3); skipped when `bazel` is not on PATH (a failure under CI=true, where .ci/run installs it). Bazel runs
with its own output root in a temporary directory and writes no bazel-* symlinks, so the
checkout and ~/.cache stay untouched; its server is stopped and its files removed at the end.
"""

import importlib.util
import os
import pathlib
import re
import shutil
import stat
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
INSTALL_HINT = "bazel not installed: apt-get install bazel-bootstrap bazel-platforms"
SMALL_TEST = "//:trainer_losses_test_losses"


def _load_runner():
    spec = importlib.util.spec_from_file_location(
        "bazel_pytest_main", REPO / "tests" / "bazel_pytest_main.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runner_maps_bazel_test_protocol_to_pytest():
    runner = _load_runner()
    args = runner.pytest_args(
        ["tests/a/test_x.py", "-x"],
        {"TESTBRIDGE_TEST_ONLY": "round_trip", "XML_OUTPUT_FILE": "/out/test.xml"},
    )
    assert args[0] == "tests/a/test_x.py"
    assert "-x" in args
    assert args[args.index("-k") + 1] == "round_trip"
    assert "--junitxml=/out/test.xml" in args
    assert args[args.index("-n") + 1] == "0"  # one process per file: Bazel runs files in parallel
    assert "-k" not in runner.pytest_args(["tests/a/test_x.py"], {})
    with pytest.raises(SystemExit):
        runner.pytest_args([], {})


def _rmtree(path):
    # Bazel leaves read-only directories in its output root.
    def make_writable(func, p, _exc):
        os.chmod(p, stat.S_IRWXU)
        func(p)

    shutil.rmtree(path, onerror=make_writable)


@pytest.fixture(scope="module")
def bazel(tmp_path_factory):
    """Runs `bazel <args>` in the checkout; yields a function returning CompletedProcess."""
    exe = shutil.which("bazel")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"bazel is missing under CI=true (.ci/run installs it): {INSTALL_HINT}")
        pytest.skip(INSTALL_HINT)
    root = tmp_path_factory.mktemp("bazel_output_root")
    # Targets run this very interpreter (the environment with the project's dependencies),
    # whatever PATH says: WORKSPACE's local_python rule honours PYTHON_BIN_PATH.
    env = dict(os.environ, PYTHON_BIN_PATH=sys.executable)
    startup = [exe, f"--output_user_root={root}", "--max_idle_secs=300"]

    def run(*args, timeout=900):
        return subprocess.run(
            [*startup, *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    server_pid = None
    try:
        yield run
        info = run("info", "server_pid", timeout=120)
        if info.returncode == 0:
            server_pid = int(info.stdout.strip())
    finally:
        # Stops the server (about 250 MB), then deletes its output root. (Not `bazel clean`,
        # which would also delete the checkout's bazel-* symlinks of the usual output root.)
        run("shutdown", timeout=120)
        _rmtree(root)
    if server_pid is not None:
        with pytest.raises(ProcessLookupError):
            os.kill(server_pid, 0)


def _output(proc):
    return f"exit status {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


@pytest.mark.slow
def test_bazel_builds_every_target_and_runs_a_test(bazel):
    # Every package, binary and pytest file is a target (found by glob, nothing listed).
    # All targets live in the top-level BUILD; //:all (unlike //...) never walks into a
    # bazel-<checkout> symlink left by a build with the user's usual output root, which this
    # temporary output root would not recognise as its own.
    query = bazel("query", "//:all")
    assert query.returncode == 0, _output(query)
    targets = set(query.stdout.split())
    expected = {"//:trainer_lib", "//:export_lib", "//:mobile_demo_lib"}
    expected |= {"//:train", "//:img2img-train"}
    if (REPO / "export" / "main.py").exists():
        expected |= {"//:export", "//:img2img-export"}
    for test_file in sorted((REPO / "tests").rglob("test_*.py")):
        rel = test_file.relative_to(REPO / "tests").with_suffix("")
        if rel.as_posix() != "test_bazel":
            expected.add("//:" + rel.as_posix().replace("/", "_"))
    assert expected <= targets, f"missing targets: {sorted(expected - targets)}"

    # --symlink_prefix=/ : no bazel-* symlinks in the checkout.
    build = bazel("build", "--symlink_prefix=/", "//:all")
    assert build.returncode == 0, _output(build)
    assert "Build completed successfully" in build.stderr

    # The interpreter Bazel pinned (WORKSPACE's @local_python) is the one running this suite.
    output_base = bazel("info", "output_base")
    assert output_base.returncode == 0, _output(output_base)
    pinned = pathlib.Path(output_base.stdout.strip(), "external/local_python/interpreter.txt")
    assert pinned.read_text().strip() == sys.executable

    test = bazel("test", "--symlink_prefix=/", "--test_output=all", SMALL_TEST)
    out = test.stdout + test.stderr
    assert test.returncode == 0, _output(test)
    assert re.search(re.escape(SMALL_TEST) + r"\s+PASSED", out), out
    assert re.search(r"=+ \d+ passed", out), out  # pytest really ran the file's tests

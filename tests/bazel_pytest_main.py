"""Runs one pytest file as a Bazel py_test: `bazel_pytest_main.py <test file> [pytest args]`.

The BUILD file passes the test file's path; extra pytest options come from
`bazel test --test_arg=...`. Bazel's test protocol is honoured: `--test_filter=EXPR`
arrives as TESTBRIDGE_TEST_ONLY and becomes pytest's `-k EXPR`, results go to
XML_OUTPUT_FILE as JUnit XML, and the exit status is pytest's.
"""

import os
import sys


def pytest_args(argv, environ):
    """The pytest command line for `argv` (test file first) under Bazel's `environ`."""
    if not argv:
        raise SystemExit("usage: bazel_pytest_main.py <test file> [pytest args]")
    # No cache directory: runfiles are a symlink tree that is rebuilt for every run. One
    # process: Bazel runs the files side by side already (setup.cfg's -n is for the suite).
    args = [argv[0], "-p", "no:cacheprovider", "-n", "0", *argv[1:]]
    if environ.get("TESTBRIDGE_TEST_ONLY"):
        args += ["-k", environ["TESTBRIDGE_TEST_ONLY"]]
    if environ.get("XML_OUTPUT_FILE"):
        args.append("--junitxml=" + environ["XML_OUTPUT_FILE"])
    return args


def main(argv):
    # Keep __pycache__ directories (and pytest's rewritten test modules) out of the runfiles.
    sys.dont_write_bytecode = True
    import pytest

    return int(pytest.main(pytest_args(argv, os.environ)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/bin/sh
echo "bazel coverage is not available in this offline build; run pytest with coverage instead" >&2
exit 1

#!/usr/bin/env bash
# Installs onnxruntime-web (version pinned in package.json / package-lock.json) with npm and
# copies the files the page loads into vendor/, which serve_web serves. Nothing is fetched by
# the page at run time: the browser only talks to the local server.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm not found; install Node.js and npm (Debian: apt-get install -y nodejs npm)" >&2
  exit 1
fi
npm ci --no-audit --no-fund --omit=dev --ignore-scripts
dist=node_modules/onnxruntime-web/dist
mkdir -p vendor
# ort.wasm.min.js is the WebAssembly-only build (global `ort`); it loads the .mjs glue and the
# .wasm binary from ort.env.wasm.wasmPaths at session creation.
for f in ort.wasm.min.js ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm; do
  cp "$dist/$f" vendor/
done
node -p "require('./node_modules/onnxruntime-web/package.json').version" > vendor/VERSION
echo "onnxruntime-web $(cat vendor/VERSION) installed into $(pwd)/vendor"

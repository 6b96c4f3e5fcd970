// Runs an exported image translation model in the browser with onnxruntime-web (WebAssembly).
//
// Everything is loaded from the serving origin: vendor/ (onnxruntime-web, installed by
// install_vendor.sh), samples/ (bundled digits) and export/ (metadata.json and the .onnx files).
// Pre/post-processing follows the export metadata: uint8 RGB -> float32 NHWC in the image
// input's value_range, [-1, 1] for every exported path
// (x / 127.5 - 1); the tanh output goes back to uint8 with round((y + 1) * 127.5), clipped.
//
// For automated tests the page exposes window.demo: state ("loading", "ready", "running",
// "done", "error"), lastInput / lastOutput (the float32 tensors fed and produced), lastLatencyMs.
"use strict";

const SAMPLES = ["digit_0.png", "digit_3.png", "digit_7.png"];
const demo = (window.demo = {
  state: "loading",
  error: null,
  lastInput: null,
  lastOutput: null,
  lastShape: null,
  lastLatencyMs: null,
  runs: 0,
});

const $ = (id) => document.getElementById(id);
let metadata = null;
let session = null;
let sessionFile = null;
let imageSize = 32;
let currentBlob = null;

function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.className = isError ? "error" : "";
  if (isError) {
    demo.state = "error";
    demo.error = text;
  }
}

// The export metadata (export/metadata.py) lists artifacts; the ONNX ones run here. Each entry
// describes its inputs by kind: "image" (NHWC in value_range), "onehot" (labels name the
// entries, e.g. the target domains), "noise" (standard normal).
function onnxArtifacts(meta) {
  const takesImage = (a) => !a.inputs || a.inputs.some((s) => s.kind === "image");
  return (meta.artifacts || []).filter(
    (a) => a.format === "onnx" && a.status !== "not supported" && a.file && takesImage(a),
  );
}

let artifact = null;

function inputSpecs() {
  if (artifact && artifact.inputs && artifact.inputs.length) return artifact.inputs;
  // Without specs: the first input is the image, the others are treated by their names.
  return session.inputNames.map((name, i) => ({
    name,
    kind: i === 0 ? "image" : /domain|class|label/.test(name) ? "onehot" : "noise",
    labels: metadata.domains || [],
  }));
}

function imageSpec() {
  return inputSpecs().find((s) => s.kind === "image");
}

async function loadMetadata() {
  const resp = await fetch("export/metadata.json");
  if (!resp.ok) throw new Error(`export/metadata.json: HTTP ${resp.status}`);
  metadata = await resp.json();
  const select = $("model");
  select.innerHTML = "";
  for (const art of onnxArtifacts(metadata)) {
    const opt = document.createElement("option");
    opt.value = art.file;
    const note = art.status && art.status !== "ok" ? ` [${art.status}]` : "";
    opt.textContent = `${art.path || art.file} (${art.file})${note}`;
    select.appendChild(opt);
  }
  if (!select.options.length) throw new Error("metadata.json lists no .onnx artifact");
}

async function loadSession(file) {
  if (sessionFile === file && session) return session;
  demo.state = "loading";
  setStatus(`Loading ${file}…`);
  session = await ort.InferenceSession.create(`export/${file}`, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
  sessionFile = file;
  artifact = (metadata.artifacts || []).find((a) => a.file === file) || null;
  const spec = imageSpec();
  if (!spec) throw new Error(`${file} has no image input; this page translates images`);
  const h = spec.shape && spec.shape[1];
  imageSize = h || (artifact && artifact.image_size) || metadata.image_size || imageSize;
  const onehot = inputSpecs().find((s) => s.kind === "onehot");
  const domainLabel = $("domain-label");
  if (onehot) {
    const select = $("domain");
    select.innerHTML = "";
    (onehot.labels || []).forEach((d, i) => {
      const opt = document.createElement("option");
      opt.value = String(i);
      opt.textContent = d;
      select.appendChild(opt);
    });
    domainLabel.hidden = false;
  } else {
    domainLabel.hidden = true;
  }
  // A picked image is redrawn at this model's size.
  if (currentBlob) await showInput(currentBlob);
  return session;
}

function standardNormal(n) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = 1 - Math.random();
    out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
  }
  return out;
}

function drawToCanvas(canvas, source) {
  canvas.width = imageSize;
  canvas.height = imageSize;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.clearRect(0, 0, imageSize, imageSize);
  ctx.drawImage(source, 0, 0, imageSize, imageSize);
  return ctx.getImageData(0, 0, imageSize, imageSize);
}

async function showInput(blob) {
  currentBlob = blob;
  // colorSpaceConversion "none" keeps the file's pixel values, so the page computes what a
  // Python client decoding the same PNG computes.
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none" });
  drawToCanvas($("input"), bitmap);
  bitmap.close();
  $("translate").disabled = demo.state === "error";
}

function toTensorData(imageData, range) {
  const { data, width, height } = imageData;
  const [lo, hi] = range;
  const scale = (hi - lo) / 255;
  const out = new Float32Array(width * height * 3);
  for (let i = 0, j = 0; i < data.length; i += 4, j += 3) {
    out[j] = data[i] * scale + lo;
    out[j + 1] = data[i + 1] * scale + lo;
    out[j + 2] = data[i + 2] * scale + lo;
  }
  return out;
}

function drawOutput(floats, size, range) {
  const [lo, hi] = range;
  const canvas = $("output");
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(size, size);
  for (let i = 0, j = 0; j < floats.length; i += 4, j += 3) {
    for (let k = 0; k < 3; k++) {
      img.data[i + k] = Math.min(255, Math.max(0, Math.round(((floats[j + k] - lo) / (hi - lo)) * 255)));
    }
    img.data[i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

async function translate() {
  try {
    const sess = await loadSession($("model").value);
    demo.state = "running";
    setStatus("Translating…");
    const ctx = $("input").getContext("2d", { willReadFrequently: true });
    const pixels = ctx.getImageData(0, 0, imageSize, imageSize);
    const spec = imageSpec();
    const range = spec.value_range || metadata.value_range || [-1, 1];
    const input = toTensorData(pixels, range);
    const feeds = {};
    for (const s of inputSpecs()) {
      if (s.kind === "image") {
        feeds[s.name] = new ort.Tensor("float32", input, [1, imageSize, imageSize, 3]);
      } else if (s.kind === "onehot") {
        const n = (s.labels || []).length || (s.shape && s.shape[1]);
        const onehot = new Float32Array(n);
        onehot[Number($("domain").value || 0)] = 1;
        feeds[s.name] = new ort.Tensor("float32", onehot, [1, n]);
      } else if (s.kind === "noise") {
        const n = s.shape[1];
        feeds[s.name] = new ort.Tensor("float32", standardNormal(n), [1, n]);
      } else {
        throw new Error(`input "${s.name}" of kind "${s.kind}" is not supported by this page`);
      }
    }
    const t0 = performance.now();
    const results = await sess.run(feeds);
    const latency = performance.now() - t0;
    const outSpec = ((artifact && artifact.outputs) || []).find((o) => o.kind === "image");
    const output = results[outSpec && results[outSpec.name] ? outSpec.name : sess.outputNames[0]];
    const outRange = (outSpec && outSpec.value_range) || range;
    drawOutput(output.data, output.dims[1], outRange);
    demo.lastInput = Array.from(input);
    demo.lastOutput = Array.from(output.data);
    demo.lastShape = Array.from(output.dims);
    demo.lastLatencyMs = latency;
    demo.runs += 1;
    $("latency").textContent = `${latency.toFixed(1)} ms`;
    demo.state = "done";
    setStatus(`Done: ${sessionFile}`);
  } catch (err) {
    setStatus(`Error: ${err.message || err}`, true);
  }
}

async function main() {
  try {
    if (typeof ort === "undefined") {
      throw new Error(
        "onnxruntime-web is not installed: run mobile_demo/web/install_vendor.sh, then reload",
      );
    }
    ort.env.wasm.wasmPaths = new URL("vendor/", window.location.href).href;
    // Threads need a cross-origin isolated page (serve_web sends the COOP/COEP headers).
    ort.env.wasm.numThreads = self.crossOriginIsolated
      ? Math.min(4, navigator.hardwareConcurrency || 1)
      : 1;
    for (const name of SAMPLES) {
      const opt = document.createElement("option");
      opt.value = name;
      opt.textContent = name.replace(".png", "").replace("_", " ");
      $("sample").appendChild(opt);
    }
    $("file").addEventListener("change", (e) => {
      if (e.target.files.length) showInput(e.target.files[0]);
    });
    $("sample").addEventListener("change", async (e) => {
      if (!e.target.value) return;
      const resp = await fetch(`samples/${e.target.value}`);
      await showInput(await resp.blob());
    });
    $("translate").addEventListener("click", translate);
    $("model").addEventListener("change", () =>
      loadSession($("model").value)
        .then(ready)
        .catch((err) => setStatus(`Error: ${err.message || err}`, true)),
    );
    await loadMetadata();
    await loadSession($("model").value);
    ready();
  } catch (err) {
    setStatus(`Error: ${err.message || err}`, true);
  }
}

function ready() {
  demo.state = "ready";
  setStatus(`Ready: ${sessionFile} (${imageSize}×${imageSize}); choose an image`);
}

main();

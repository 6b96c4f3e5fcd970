// Runs an exported image translation model in the browser with onnxruntime-web (WebAssembly).
//
// Everything is loaded from the serving origin: vendor/ (onnxruntime-web, installed by
// install_vendor.sh), samples/ (bundled digits) and export/ (metadata.json and the .onnx files).
//
// Pre-processing is the project's one preprocessing (trainer/imaging.py), computed here in
// integer arithmetic exactly as Pillow does it, not with canvas scaling (drawImage smoothing is
// another filter): decode the file's own pixels (no colour management), composite transparent
// pixels over white, resize the shorter side to the model's size with Pillow's BICUBIC (a
// separable convolution, cubic kernel a = -0.5, support widened by the downscale factor,
// horizontal pass first with 8-bit intermediate rounding), crop the centre square, and scale
// uint8 to the image input's value_range. Outputs go back to uint8 with round(), clipped.
// Noise inputs are drawn from the prior the path declares in metadata.json.
//
// For automated tests the page exposes window.demo: state ("loading", "ready", "running",
// "done", "error", "unavailable"), inputName, lastInput / lastOutput (the float32 tensors fed
// and produced), lastInputName (the input they belong to), lastLatencyMs, runs; and
// demo.benchmark(runs): the browser's own median latency of every ONNX variant of the chosen
// path (bench/web_latency.py prints it), the figures behind VARIANT_PREFERENCE.
"use strict";

const SAMPLES = ["digit_0.png", "digit_3.png", "digit_7.png"];
// Listed paths keep their metadata order; within a path the variants follow this order. Where
// a path has several variants within their bounds the page preselects the one it measures
// fastest on this device (preselectFastest): in WebAssembly the static int8 ONNX is ahead on a
// large generator and behind on a small one, so no fixed order fits every model.
const VARIANT_PREFERENCE = ["int8", "fp32"];
const REFUSED = ["below bound", "failed"];
const demo = (window.demo = {
  state: "loading",
  error: null,
  inputName: null,
  lastInput: null,
  lastInputName: null,
  lastOutput: null,
  lastShape: null,
  lastLatencyMs: null,
  runs: 0,
  variantTimes: null,
});

const $ = (id) => document.getElementById(id);
let metadata = null;
let session = null;
let sessionFile = null;
let artifact = null;
let imageSize = 32;
// The chosen input: a promise of its decoded pixels, replaced on every choice. Translate
// awaits the one current at its click, so it never reads a half-loaded or older picture.
let inputPromise = null;
let inputSerial = 0;

function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.className = isError ? "error" : "";
  if (isError) {
    demo.state = "error";
    demo.error = text;
  }
}

// ---- metadata -------------------------------------------------------------------------------

const takesImage = (a) => (a.inputs || []).some((s) => s.kind === "image");

function parityText(a) {
  const p = a.parity || {};
  const bound = p.bound || {};
  const judged = (p.judged_on || []).filter((s) => p[s]);
  if (!judged.length) return "";
  if (bound.psnr !== undefined) {
    const worst = Math.min(...judged.map((s) => p[s].psnr));
    let digits = 2;
    while (digits < 6 && Number(worst.toFixed(digits)) >= bound.psnr && worst < bound.psnr) digits++;
    return `PSNR ${worst.toFixed(digits)} dB < ${bound.psnr} dB`;
  }
  if (bound.max_abs !== undefined) {
    const worst = Math.max(...judged.map((s) => p[s].max_abs));
    return `max|err| ${worst.toExponential(1)} > ${bound.max_abs}`;
  }
  return "";
}

function rank(a) {
  const i = VARIANT_PREFERENCE.indexOf(a.precision || "fp32");
  return i < 0 ? VARIANT_PREFERENCE.length : i;
}

// Paths in metadata order, then the preferred variant first within each path.
function order(artifacts) {
  const paths = [...new Set(artifacts.map((a) => a.path || a.file))];
  const key = (a) => paths.indexOf(a.path || a.file) * (VARIANT_PREFERENCE.length + 1) + rank(a);
  return artifacts.slice().sort((a, b) => key(a) - key(b));
}

async function loadMetadata() {
  const resp = await fetch("export/metadata.json");
  if (!resp.ok) throw new Error(`export/metadata.json: HTTP ${resp.status}`);
  metadata = await resp.json();
  const onnx = (metadata.artifacts || []).filter(
    (a) => a.format === "onnx" && a.file && a.status !== "not supported",
  );
  const usable = onnx.filter(takesImage);
  if (!usable.length) {
    const method = metadata.method ? `${metadata.method} ` : "";
    if (onnx.length) {
      const paths = [...new Set(onnx.map((a) => a.path || a.file))].join(", ");
      return (
        `This ${method}export has only noise-to-image paths (${paths}); this page ` +
        "translates images. Sample them with export.runtime.Translator(...).generate(n)."
      );
    }
    return (
      `This ${method}export has no .onnx artifact: export with the onnx format ` +
      "(python -m export.main --model_dir=DIR --formats=onnx)."
    );
  }
  const select = $("model");
  select.innerHTML = "";
  for (const a of order(usable)) {
    const opt = document.createElement("option");
    opt.value = a.file;
    const refused = REFUSED.includes(a.status);
    const note = refused ? ` [${a.status}: ${parityText(a)}]` : a.status && a.status !== "ok" ? ` [${a.status}]` : "";
    opt.textContent = `${a.path || a.file} (${a.file})${note}`;
    opt.dataset.refused = refused ? "1" : "";
    if (refused) opt.className = "refused";
    select.appendChild(opt);
  }
  const ok = [...select.options].find((o) => !o.dataset.refused);
  if (ok) {
    select.value = ok.value;
  } else {
    // Never preselect a variant outside its bound: the person picks one knowingly.
    const none = document.createElement("option");
    none.value = "";
    none.textContent = "(every model is outside its parity bound: choose one)";
    select.insertBefore(none, select.firstChild);
    select.value = "";
  }
  return null;
}

function specsOf(a) {
  return (a && a.inputs) || [];
}

// A WebAssembly session of export/<file>, every graph optimization on.
function createSession(file) {
  return ort.InferenceSession.create(`export/${file}`, {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  });
}

async function loadSession(file) {
  if (!file) {
    session = null;
    sessionFile = null;
    return null;
  }
  if (sessionFile === file && session) return session;
  demo.state = "loading";
  setStatus(`Loading ${file}…`);
  session = await createSession(file);
  sessionFile = file;
  artifact = (metadata.artifacts || []).find((a) => a.file === file) || null;
  const spec = specsOf(artifact).find((s) => s.kind === "image");
  if (!spec) throw new Error(`${file} has no image input; this page translates images`);
  imageSize = (spec.shape && spec.shape[1]) || artifact.image_size || metadata.image_size;
  const onehot = specsOf(artifact).find((s) => s.kind === "onehot");
  const select = $("domain");
  select.innerHTML = "";
  if (onehot) {
    const labels = onehot.labels || [];
    if (onehot.groups && onehot.groups.length) {
      let at = 0;
      for (const g of onehot.groups) {
        const group = document.createElement("optgroup");
        group.label = g.name;
        g.labels.forEach((label, j) => {
          const opt = document.createElement("option");
          opt.value = String(at + j);
          opt.textContent = label;
          group.appendChild(opt);
        });
        at += g.labels.length;
        select.appendChild(group);
      }
    } else {
      labels.forEach((label, i) => {
        const opt = document.createElement("option");
        opt.value = String(i);
        opt.textContent = label;
        select.appendChild(opt);
      });
    }
  }
  $("domain-label").hidden = !onehot;
  clearOutput();
  return session;
}

// ---- the one preprocessing (trainer/imaging.py), as Pillow computes it ----------------------

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;

function bicubic(x) {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc: per output pixel, the first input index,
// the tap count and integer weights (scaled by 2^22).
function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 2 * filterscale;
  const out = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    const k = [];
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = bicubic((x + xmin - center + 0.5) * ss);
      k.push(w);
      ww += w;
    }
    const kk = k.map((w) => {
      const v = ww !== 0 ? w / ww : w;
      return v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    });
    out.push({ xmin, kk });
  }
  return out;
}

function clip8(ss) {
  const v = Math.floor(ss / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

// RGB uint8 [h, w, 3] -> [nh, nw, 3]: horizontal pass then vertical, 8-bit in between.
function resizeBicubic(src, w, h, nw, nh) {
  let cur = src;
  let cw = w;
  if (nw !== w) {
    const co = coefficients(w, nw);
    const tmp = new Uint8ClampedArray(nw * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < nw; x++) {
        const { xmin, kk } = co[x];
        for (let c = 0; c < 3; c++) {
          let ss = ONE / 2;
          for (let i = 0; i < kk.length; i++) ss += cur[(y * w + xmin + i) * 3 + c] * kk[i];
          tmp[(y * nw + x) * 3 + c] = clip8(ss);
        }
      }
    }
    cur = tmp;
    cw = nw;
  }
  if (nh !== h) {
    const co = coefficients(h, nh);
    const tmp = new Uint8ClampedArray(cw * nh * 3);
    for (let y = 0; y < nh; y++) {
      const { xmin, kk } = co[y];
      for (let x = 0; x < cw; x++) {
        for (let c = 0; c < 3; c++) {
          let ss = ONE / 2;
          for (let i = 0; i < kk.length; i++) ss += cur[((xmin + i) * cw + x) * 3 + c] * kk[i];
          tmp[(y * cw + x) * 3 + c] = clip8(ss);
        }
      }
    }
    cur = tmp;
  }
  return cur;
}

// Python's round(): halves to even.
function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// {rgb, width, height} -> uint8 RGB [size, size, 3]: imaging.fit.
function fit(picture, size) {
  const { rgb, width: w, height: h } = picture;
  if (w === size && h === size) return rgb;
  const scale = Math.max(size / w, size / h);
  const nw = Math.max(size, roundHalfEven(w * scale));
  const nh = Math.max(size, roundHalfEven(h * scale));
  const resized = nw === w && nh === h ? rgb : resizeBicubic(rgb, w, h, nw, nh);
  const left = Math.floor((nw - size) / 2);
  const top = Math.floor((nh - size) / 2);
  const out = new Uint8ClampedArray(size * size * 3);
  for (let y = 0; y < size; y++) {
    const row = ((top + y) * nw + left) * 3;
    out.set(resized.subarray(row, row + size * 3), y * size * 3);
  }
  return out;
}

// A file's own pixels at its own size, alpha composited over white as Pillow pastes it.
async function decode(blob) {
  const bitmap = await createImageBitmap(blob, {
    colorSpaceConversion: "none",
    premultiplyAlpha: "none",
  });
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const { data, width, height } = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const rgb = new Uint8ClampedArray(width * height * 3);
  for (let i = 0, j = 0; i < data.length; i += 4, j += 3) {
    const a = data[i + 3];
    for (let c = 0; c < 3; c++) {
      if (a === 255) {
        rgb[j + c] = data[i + c];
      } else {
        const t = 255 * (255 - a) + data[i + c] * a + 128; // DIV255 of Pillow's paste
        rgb[j + c] = ((t >> 8) + t) >> 8;
      }
    }
  }
  return { rgb, width, height };
}

function drawRGB(canvas, rgb, size) {
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(size, size);
  for (let i = 0, j = 0; j < rgb.length; i += 4, j += 3) {
    img.data[i] = rgb[j];
    img.data[i + 1] = rgb[j + 1];
    img.data[i + 2] = rgb[j + 2];
    img.data[i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function clearOutput() {
  const canvas = $("output");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  demo.lastOutput = null;
  demo.lastShape = null;
  demo.lastInputName = null;
  $("latency").textContent = "–";
}

// ---- inputs ---------------------------------------------------------------------------------

function chooseInput(name, blobPromise) {
  const serial = ++inputSerial;
  demo.inputName = name;
  clearOutput(); // the old output belongs to the old input
  inputPromise = (async () => {
    const picture = await decode(await blobPromise);
    return { name, serial, picture };
  })();
  $("translate").disabled = demo.state === "error";
  // Show it when decoded (and only if it is still the current choice).
  inputPromise
    .then((input) => {
      if (input.serial === inputSerial) drawRGB($("input"), fit(input.picture, imageSize), imageSize);
    })
    .catch((err) => setStatus(`Error: cannot read ${name}: ${err.message || err}`, true));
}

function samplePrior(spec, n) {
  const prior = spec.prior || { distribution: "normal", mean: 0, stddev: 1 };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (prior.distribution === "uniform") {
      out[i] = prior.low + (prior.high - prior.low) * Math.random();
    } else {
      const u = 1 - Math.random();
      const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
      out[i] = prior.mean + prior.stddev * z;
    }
  }
  return out;
}

function toTensorData(rgb, range) {
  const [lo, hi] = range;
  const scale = (hi - lo) / 255;
  const out = new Float32Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) out[i] = rgb[i] * scale + lo;
  return out;
}

function drawOutput(floats, size, range) {
  const [lo, hi] = range;
  const rgb = new Uint8ClampedArray(size * size * 3);
  for (let i = 0; i < rgb.length; i++) {
    rgb[i] = Math.min(255, Math.max(0, Math.round(((floats[i] - lo) / (hi - lo)) * 255)));
  }
  drawRGB($("output"), rgb, size);
}

// The feeds of one call: the image tensor, the target-domain one-hot, noise from its prior.
function feedsFor(specs, data, size, domainIndex) {
  const feeds = {};
  for (const s of specs) {
    if (s.kind === "image") {
      feeds[s.name] = new ort.Tensor("float32", data, [1, size, size, 3]);
    } else if (s.kind === "onehot") {
      const n = (s.labels || []).length || s.shape[1];
      const onehot = new Float32Array(n);
      onehot[domainIndex] = 1;
      feeds[s.name] = new ort.Tensor("float32", onehot, [1, n]);
    } else if (s.kind === "noise") {
      feeds[s.name] = new ort.Tensor("float32", samplePrior(s, s.shape[1]), [1, s.shape[1]]);
    } else {
      throw new Error(`input "${s.name}" of kind "${s.kind}" is not supported by this page`);
    }
  }
  return feeds;
}

// Median latency (ms) of `runs` calls, after 2 untimed ones, of every ONNX variant of the
// chosen model's path, each in its own session, on a mid-grey image: [{file, precision,
// status, median_ms}]. Leaves the chosen session as it was.
async function benchmark(runs = 10, only = null) {
  const chosen = (metadata.artifacts || []).find((a) => a.file === $("model").value);
  if (!chosen) throw new Error("choose a model first");
  const variants =
    only ||
    order(
      metadata.artifacts.filter(
        (a) => a.format === "onnx" && a.path === chosen.path && a.status !== "not supported",
      ),
    );
  const figures = [];
  for (const a of variants) {
    const sess = await createSession(a.file);
    const specs = specsOf(a);
    const spec = specs.find((s) => s.kind === "image");
    const size = (spec.shape && spec.shape[1]) || metadata.image_size;
    const feeds = feedsFor(specs, new Float32Array(size * size * 3), size, 0);
    const times = [];
    for (let i = 0; i < runs + 2; i++) {
      const t0 = performance.now();
      await sess.run(feeds);
      if (i >= 2) times.push(performance.now() - t0);
    }
    await sess.release();
    times.sort((x, y) => x - y);
    const mid = times.length >> 1;
    const median = times.length % 2 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
    figures.push({ file: a.file, precision: a.precision || "fp32", status: a.status, median_ms: median });
  }
  return figures;
}
demo.benchmark = benchmark;

// Of the preselected path's variants within their bounds, preselects the fastest here (two
// timed calls each after a warm-up; demo.variantTimes keeps the figures).
async function preselectFastest() {
  const select = $("model");
  const chosen = (metadata.artifacts || []).find((a) => a.file === select.value);
  if (!chosen) return;
  const candidates = [...select.options]
    .filter((o) => o.value && !o.dataset.refused)
    .map((o) => metadata.artifacts.find((a) => a.file === o.value))
    .filter((a) => a && a.path === chosen.path);
  if (candidates.length < 2) return;
  setStatus(`Timing the ${candidates.length} variants of ${chosen.path} on this device…`);
  const figures = await benchmark(2, candidates);
  figures.sort((x, y) => x.median_ms - y.median_ms);
  demo.variantTimes = figures;
  select.value = figures[0].file;
}

async function translate() {
  try {
    if (!inputPromise) throw new Error("choose an image first");
    if (!$("model").value) throw new Error("choose a model first");
    const pending = inputPromise;
    const sess = await loadSession($("model").value);
    const input = await pending; // the input chosen when Translate was clicked
    demo.state = "running";
    setStatus("Translating…");
    const pixels = fit(input.picture, imageSize);
    drawRGB($("input"), pixels, imageSize);
    const specs = specsOf(artifact);
    const spec = specs.find((s) => s.kind === "image");
    const range = spec.value_range || metadata.value_range || [-1, 1];
    const data = toTensorData(pixels, range);
    const feeds = feedsFor(specs, data, imageSize, Number($("domain").value || 0));
    const t0 = performance.now();
    const results = await sess.run(feeds);
    const latency = performance.now() - t0;
    if (input.serial !== inputSerial) {
      // Another input was chosen meanwhile: this output is not of the picture now shown.
      demo.state = "ready";
      setStatus("Input changed: press Translate again");
      return;
    }
    const outSpec = ((artifact && artifact.outputs) || []).find((o) => o.kind === "image");
    const output = results[outSpec && results[outSpec.name] ? outSpec.name : sess.outputNames[0]];
    const outRange = (outSpec && outSpec.value_range) || range;
    drawOutput(output.data, output.dims[1], outRange);
    demo.lastInput = Array.from(data);
    demo.lastInputName = input.name;
    demo.lastOutput = Array.from(output.data);
    demo.lastShape = Array.from(output.dims);
    demo.lastLatencyMs = latency;
    demo.runs += 1;
    $("latency").textContent = `${latency.toFixed(1)} ms`;
    demo.state = "done";
    setStatus(`Done: ${input.name} with ${sessionFile}`);
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
      if (e.target.files.length) {
        $("sample").value = "";
        chooseInput(e.target.files[0].name, Promise.resolve(e.target.files[0]));
      }
    });
    $("sample").addEventListener("change", (e) => {
      const name = e.target.value;
      if (!name) return;
      chooseInput(
        name,
        fetch(`samples/${name}`).then((r) => {
          if (!r.ok) throw new Error(`samples/${name}: HTTP ${r.status}`);
          return r.blob();
        }),
      );
    });
    $("translate").addEventListener("click", translate);
    $("model").addEventListener("change", () =>
      loadSession($("model").value)
        .then(ready)
        .catch((err) => setStatus(`Error: ${err.message || err}`, true)),
    );
    const unavailable = await loadMetadata();
    if (unavailable) {
      demo.state = "unavailable";
      $("model-fieldset").disabled = true;
      $("input-fieldset").disabled = true;
      setStatus(unavailable);
      return;
    }
    await preselectFastest();
    await loadSession($("model").value);
    ready();
  } catch (err) {
    setStatus(`Error: ${err.message || err}`, true);
  }
}

function ready() {
  demo.state = "ready";
  if (!sessionFile) {
    setStatus("Choose a model: every one listed is outside its parity bound");
    return;
  }
  const chosen = $("model").selectedOptions[0];
  const warn = chosen && chosen.dataset.refused ? ` (warning: ${chosen.textContent})` : "";
  setStatus(`Ready: ${sessionFile} (${imageSize}×${imageSize})${warn}; choose an image`);
}

main();

// The page: images in (file picker, camera, drag and drop), one result card per image out.
//
// Cards are machine-readable too: a result carries data-file, data-label (the answer: a class,
// or "unknown" as herbi.runtime says for an image that is none of them), data-probability (the
// most probable class's), data-unknown ("true" or "false"), data-score and data-threshold (the
// unknown score and the threshold it was held against, when the model has them), and
// data-probabilities (every class in label order) and data-ms (the model's time); an error
// carries data-file and data-error. Images are classified one after another, in the order
// given, so a slow or broken file never blocks the others for long and never stops them.

import { Model, topK } from "./model.js";

const TOP_K = 3;
const $ = (selector) => document.querySelector(selector);

const timing = { modelReadyMs: null, firstResultMs: null };
window.herbiTiming = timing; // read by herbi's browser benchmark (real time, not virtual)

const counts = { given: 0, classified: 0, unknown: 0, failed: 0 };
let loadError = null;
let queue = Promise.resolve();
const modelReady = Model.load().then(
  (model) => {
    timing.modelReadyMs = performance.now();
    showInfo(model.info);
    showStatus();
    return model;
  },
  (error) => {
    loadError = error;
    showStatus();
    throw error;
  },
);
modelReady.catch(() => {}); // shown in the status line; each card waiting on it says so too

function showStatus() {
  const status = $("#status");
  status.classList.toggle("bad", loadError !== null);
  if (loadError !== null) {
    status.textContent = `The model could not be loaded: ${loadError.message}`;
    return;
  }
  const model = timing.modelReadyMs === null
    ? "Loading the model…"
    : `Model ready in ${Math.round(timing.modelReadyMs)} ms.`;
  const done = counts.classified + counts.failed;
  let images = "Choose or drop images.";
  if (done < counts.given) images = `Classifying ${done + 1} of ${counts.given}…`;
  else if (counts.given) {
    const unknown = counts.unknown ? ` (${counts.unknown} none of the classes)` : "";
    images = `${counts.classified} classified${unknown}${counts.failed ? `, ${counts.failed} could not be read` : ""}.`;
  }
  status.textContent = `${model} ${images}`;
}

function percent(p) {
  return `${(100 * p).toFixed(1)}%`;
}

function formatBytes(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} KB`;
  return `${n} bytes`;
}

/** How the model answers "none of these", for the info panel (null: it always names a class). */
function unknownRule(unknown) {
  if (unknown == null) return null;
  return `an image whose ${unknown.score} score is below ${unknown.threshold.toFixed(3)}: ` +
    `a threshold that keeps ${percent(unknown.keep)} of images of these classes ` +
    `(split-conformal, from ${unknown.images} validation images)`;
}

function showInfo(info) {
  const rows = [
    ["Format", [...new Set([info.description, info.format].filter(Boolean))].join(" · ")],
    ["Model size", formatBytes(info.size_bytes)],
    ["Runtime", `${info.runtime.name} ${info.runtime.version} (${formatBytes(info.runtime.bytes)})`],
    ["Input", `${info.contract.input_size.join("×")} RGB`],
    [`Classes (${info.classes.length})`, info.classes],
    ["Unknown", unknownRule(info.contract.unknown)],
    ["Trained on", info.dataset],
    ["Test accuracy", info.test_accuracy != null ? percent(info.test_accuracy) : null],
    ["Exported", info.exported],
  ];
  const list = $("#info-list");
  for (const [name, value] of rows) {
    if (value == null || value === "") continue;
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    if (Array.isArray(value)) {
      const chips = document.createElement("ul");
      chips.className = "chips";
      for (const label of value) chips.append(Object.assign(document.createElement("li"), { textContent: label }));
      dd.append(chips);
    } else {
      dd.textContent = value;
    }
    list.append(dt, dd);
  }
  document.title = `herbi · ${info.classes.length} classes · on-device`;
}

function newCard(file) {
  const card = $("#result-template").content.firstElementChild.cloneNode(true);
  card.dataset.file = file.name;
  card.querySelector(".file").textContent = file.name;
  $("#results").append(card);
  return card;
}

function showError(card, message) {
  counts.failed += 1;
  showStatus();
  card.classList.remove("pending");
  card.classList.add("error");
  card.dataset.error = message;
  card.querySelector(".pictures").remove();
  card.querySelector(".message").textContent = message;
}

function showPixels(card, pixels, model) {
  const canvas = card.querySelector(".seen canvas");
  canvas.width = model.width;
  canvas.height = model.height;
  const rgba = new ImageData(model.width, model.height);
  for (let i = 0, j = 0; i < pixels.length; i += 3, j += 4) {
    rgba.data.set(pixels.subarray(i, i + 3), j);
    rgba.data[j + 3] = 255;
  }
  canvas.getContext("2d").putImageData(rgba, 0, 0);
  card.querySelector(".seen figcaption").textContent = `model sees ${model.width}×${model.height}`;
}

function showResult(card, model, { probs, score, ms }, prepareMs) {
  const ranked = topK(probs, model.labels, TOP_K);
  const bars = card.querySelector(".bars");
  for (const { label, probability } of ranked) {
    const li = document.createElement("li");
    li.innerHTML = '<span class="name"></span><span class="bar"><span></span></span><span class="pct"></span>';
    li.querySelector(".name").textContent = label;
    li.querySelector(".bar span").style.width = percent(probability);
    li.querySelector(".pct").textContent = percent(probability);
    bars.append(li);
  }
  const unknown = model.isUnknown(score);
  card.querySelector(".message").textContent = unknown ? `none of: ${model.labels.join(", ")}` : ranked[0].label;
  card.querySelector(".why").textContent = whyText(model, score, unknown);
  card.querySelector(".time").textContent =
    `model ${ms.toFixed(1)} ms · decode and resize ${prepareMs.toFixed(1)} ms`;
  card.classList.remove("pending");
  card.classList.toggle("unknown", unknown);
  Object.assign(card.dataset, {
    label: unknown ? "unknown" : ranked[0].label,
    probability: String(ranked[0].probability),
    probabilities: Array.from(probs, String).join(","),
    unknown: String(unknown),
    ms: ms.toFixed(3),
  });
  if (score !== null) card.dataset.score = String(score);
  if (model.unknown !== null) card.dataset.threshold = String(model.unknown.threshold);
  if (timing.firstResultMs === null) timing.firstResultMs = performance.now();
  counts.classified += 1;
  counts.unknown += unknown;
  showStatus();
}

/** Why the answer is (or is not) "unknown": the score against the threshold, as herbi-classify says it. */
function whyText(model, score, unknown) {
  if (model.unknown === null || score === null) return "";
  const [s, t] = [score.toFixed(3), model.unknown.threshold.toFixed(3)];
  return unknown ? `unknown: score ${s} < threshold ${t} · nearest classes:` : `score ${s} ≥ threshold ${t}`;
}

async function classify(file, card) {
  let model;
  try {
    model = await modelReady;
  } catch (error) {
    showError(card, `not classified: the model could not be loaded (${error.message})`);
    return;
  }
  card.querySelector(".message").textContent = "Classifying…";
  try {
    const started = performance.now();
    const pixels = await model.pixels(file);
    const prepareMs = performance.now() - started;
    const photo = card.querySelector(".photo");
    photo.src = URL.createObjectURL(file);
    photo.onload = () => {
      photo.classList.toggle("small", photo.naturalWidth <= 64); // crisp pixels, not a blur
      URL.revokeObjectURL(photo.src);
    };
    showPixels(card, pixels, model);
    showResult(card, model, await model.run(pixels), prepareMs);
  } catch (error) {
    showError(card, error.message);
  }
}

function add(files) {
  for (const file of files) {
    const card = newCard(file);
    counts.given += 1;
    queue = queue.then(() => classify(file, card));
  }
  showStatus();
}

for (const input of [$("#files"), $("#camera")]) {
  input.addEventListener("change", () => {
    add(input.files);
    input.value = ""; // choosing the same file again still fires "change"
  });
}

if (!matchMedia("(pointer: coarse)").matches) $("#camera-button").hidden = true; // no camera UI on desktops

const drop = $("#drop");
for (const type of ["dragenter", "dragover"]) {
  document.addEventListener(type, (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
}
for (const type of ["dragleave", "drop"]) {
  document.addEventListener(type, () => drop.classList.remove("over"));
}
document.addEventListener("drop", (event) => {
  event.preventDefault();
  add(event.dataTransfer.files);
});

// The model: model.json (herbi's contract + what the page shows) and model.onnx, run by
// onnxruntime-web on WebAssembly. Everything is fetched from this folder; nothing leaves it.

import * as ort from "./ort/ort.wasm.min.mjs";
import { decode, inputTable, resizeBicubic, rgbOnWhite, toInput } from "./pixels.js";

export class Model {
  static async load(base = new URL(".", import.meta.url)) {
    const info = await (await fetch(new URL("model.json", base))).json();
    // One thread: several need cross-origin isolation headers that most static hosts do not
    // send, and a 32x32 model gains nothing from them.
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.wasmPaths = new URL("ort/", base).href;
    const bytes = new Uint8Array(await (await fetch(new URL(info.model, base))).arrayBuffer());
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
    return new Model(info, session);
  }

  constructor(info, session) {
    this.info = info;
    this.labels = info.contract.labels;
    [this.height, this.width] = info.contract.input_size;
    this.table = inputTable(info.contract.scale);
    this.session = session;
    this.inputName = session.inputNames[0];
    // "None of these": {score, threshold, keep, images} from the contract, or null (always a label).
    this.unknown = info.contract.unknown ?? null;
  }

  /** The model's uint8 RGB input (height*width*3) for an image file, as herbi.runtime makes it. */
  async pixels(blob) {
    const bitmap = await decode(blob);
    try {
      const { rgb, width, height } = rgbOnWhite(bitmap);
      return resizeBicubic(rgb, width, height, this.width, this.height);
    } finally {
      bitmap.close();
    }
  }

  /**
   * Probabilities (one per label, a Float32Array), the unknown score (higher: more like the
   * labels; null for a model without one) and the milliseconds session.run took.
   */
  async run(pixels) {
    const x = new ort.Tensor("float32", toInput(pixels, this.table), [1, this.height, this.width, 3]);
    const started = performance.now();
    const out = await this.session.run({ [this.inputName]: x });
    const ms = performance.now() - started;
    // Converters store the two outputs in either order: tell them apart by size, as
    // herbi.runtime does (the labels' probabilities, and one value for the score).
    const outputs = Object.values(out);
    const probs = outputs.find((t) => t.data.length === this.labels.length);
    const score = outputs.find((t) => t.data.length === 1);
    if (probs === undefined || (score === undefined && this.unknown !== null)) {
      throw new Error(`the model's outputs are not ${this.labels.length} probabilities and a score`);
    }
    return { probs: probs.data, score: score === undefined ? null : score.data[0], ms };
  }

  /** Whether an image is none of the labels: its score below the threshold, strictly (herbi's rule). */
  isUnknown(score) {
    return this.unknown !== null && score < this.unknown.threshold;
  }
}

/** The k most probable classes, most probable first; ties go to the lower index (as Python). */
export function topK(probs, labels, k) {
  const order = [...probs.keys()].sort((a, b) => probs[b] - probs[a]);
  return order.slice(0, k).map((i) => ({ label: labels[i], index: i, probability: probs[i] }));
}

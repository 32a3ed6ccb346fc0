// Image file -> the model's input tensor, exactly as herbi.runtime prepares it in Python.
//
// runtime/image.py decodes with Pillow, applies EXIF orientation, composites transparency on
// white, then resizes with Image.resize(size, BICUBIC); runtime/quantize.py maps each uint8
// pixel through a 256-entry table. The browser decodes (createImageBitmap applies the EXIF
// orientation and, with colorSpaceConversion 'none', leaves the pixels as stored, as Pillow
// does); the canvas composites on white; the resize below is a port of Pillow's Resample.c so
// the pixels the model sees are the ones Python would give it, not the browser's own resize.

export const MAX_PIXELS = 64_000_000; // runtime/image.py refuses bigger images too

/** Decode a file; a non-image or damaged file throws an Error whose message says so. */
export async function decode(blob) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, {
      colorSpaceConversion: "none",
      premultiplyAlpha: "none",
      imageOrientation: "from-image",
    });
  } catch {
    throw new Error("not an image this browser can decode (or a damaged one)");
  }
  if (bitmap.width * bitmap.height > MAX_PIXELS) {
    const size = `${bitmap.width}x${bitmap.height}`;
    bitmap.close();
    throw new Error(`${size} pixels is over the ${MAX_PIXELS.toLocaleString("en")}-pixel limit`);
  }
  return bitmap;
}

/** The bitmap drawn on white: { rgb: Uint8Array (h*w*3), width, height }. */
export function rgbOnWhite(bitmap) {
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = "#ffffff"; // a transparent background is not "black pixels"
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(bitmap, 0, 0);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgb[i] = rgba[j];
    rgb[i + 1] = rgba[j + 1];
    rgb[i + 2] = rgba[j + 2];
  }
  return { rgb, width, height };
}

// ---- Pillow's BICUBIC resample (src/libImaging/Resample.c, Pillow 13), 8-bit RGB ----------

const PRECISION_BITS = 32 - 8 - 2; // fixed-point coefficients, as in Resample.c
const SUPPORT = 2.0; // bicubic's support, scaled by the downscale factor (antialiasing)

function bicubic(x) {
  const a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

/** Per output index: the first input index, how many are used, and their fixed-point weights. */
function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = scale < 1.0 ? 1.0 : scale;
  const support = SUPPORT * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const invFilterscale = 1.0 / filterscale;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      const w = bicubic((x + xmin - center + 0.5) * invFilterscale);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0.0 ? k[x] / ww : k[x];
      // (int)(±0.5 + w * 2^22): C truncates toward zero
      weights[xx * ksize + x] = Math.trunc(w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, weights, ksize };
}

function clip8(ss) {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

const HALF = 1 << (PRECISION_BITS - 1);

/** Resize rows [y0, y0 + rows) of an RGB image horizontally to outW. */
function horizontal(src, inW, y0, rows, outW, c) {
  const out = new Uint8Array(outW * rows * 3);
  for (let y = 0; y < rows; y++) {
    const line = (y + y0) * inW * 3;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = c.bounds[xx * 2];
      const xmax = c.bounds[xx * 2 + 1];
      const kOff = xx * c.ksize;
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      for (let x = 0; x < xmax; x++) {
        const w = c.weights[kOff + x];
        const p = line + (x + xmin) * 3;
        s0 += src[p] * w;
        s1 += src[p + 1] * w;
        s2 += src[p + 2] * w;
      }
      const o = (y * outW + xx) * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return out;
}

/** Resize an RGB image of width w vertically to outH rows (bounds relative to its row 0). */
function vertical(src, w, outH, c, shift) {
  const out = new Uint8Array(w * outH * 3);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = c.bounds[yy * 2] - shift;
    const ymax = c.bounds[yy * 2 + 1];
    const kOff = yy * c.ksize;
    for (let xx = 0; xx < w; xx++) {
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      for (let y = 0; y < ymax; y++) {
        const wt = c.weights[kOff + y];
        const p = ((y + ymin) * w + xx) * 3;
        s0 += src[p] * wt;
        s1 += src[p + 1] * wt;
        s2 += src[p + 2] * wt;
      }
      const o = (yy * w + xx) * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return out;
}

/**
 * Pillow's img.resize((outW, outH), Image.Resampling.BICUBIC) on RGB pixels, bit for bit.
 * Each pass rounds to 8 bits, so the order of the passes matters; Pillow runs the vertical
 * pass first only when the height shrinks more than twice as much as the width.
 */
export function resizeBicubic(rgb, inW, inH, outW, outH) {
  const needH = outW !== inW;
  const needV = outH !== inH;
  if (!needH && !needV) return rgb;
  const horizontalFirst = !(inH - outH > 0 && inH - outH > (inW - outW) * 2);
  const cv = needV ? coefficients(inH, outH) : null;
  const ch = needH ? coefficients(inW, outW) : null;
  if (horizontalFirst) {
    if (!needV) return horizontal(rgb, inW, 0, inH, outW, ch);
    if (!needH) return vertical(rgb, inW, outH, cv, 0);
    // Only the rows the vertical pass reads are resized horizontally.
    const first = cv.bounds[0];
    const last = cv.bounds[outH * 2 - 2] + cv.bounds[outH * 2 - 1];
    const tmp = horizontal(rgb, inW, first, last - first, outW, ch);
    return vertical(tmp, outW, outH, cv, first);
  }
  const tmp = vertical(rgb, inW, outH, cv, 0);
  return needH ? horizontal(tmp, inW, 0, outH, outW, ch) : tmp;
}

// ---- uint8 pixels -> model input ----------------------------------------------------------

/** table[p] = float32(p * scale), computed in double as runtime/quantize.py's exact_table. */
export function inputTable(scale) {
  const table = new Float32Array(256);
  for (let p = 0; p < 256; p++) table[p] = Math.fround(p * scale);
  return table;
}

export function toInput(rgb, table) {
  const x = new Float32Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) x[i] = table[rgb[i]];
  return x;
}

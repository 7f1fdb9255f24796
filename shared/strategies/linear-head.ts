import * as tf from '@tensorflow/tfjs';
import type { PrototypeTable } from '../learning/prototype-table.js';
import { SeededRng } from '../learning/rng.js';

/**
 * A linear classification head on frozen embeddings: for each class, dim weights then one bias
 * (a row of dim + 1 values). The fedavg-head baseline trains it by SGD and averages it by FedAvg.
 */
export type HeadRows = Map<number, Float64Array>;

export interface HeadTraining {
  epochs: number;
  learningRate: number;
  batchSize: number;
  seed: number | string;
}


/**
 * Softmax regression over `classIds`, by minibatch SGD on cross-entropy, starting from `start`
 * (missing classes start at zero) and seeing only `embeddings` (rows × dim, labels among
 * `classIds`). Returns new rows; `start` is not changed. Local data of one mission only: what
 * the head knew of other classes fades, which is why this baseline forgets.
 */
export function trainHead(start: HeadRows, classIds: readonly number[], embeddings: Float32Array, labels: Int32Array, dim: number, o: HeadTraining): HeadRows {
  const k = classIds.length;
  const width = dim + 1;
  const w = new Float64Array(k * width);
  classIds.forEach((c, j) => {
    const row = start.get(c);
    if (row) w.set(row, j * width);
  });
  const slot = new Map(classIds.map((c, j) => [c, j]));
  const rows = labels.length;
  const targets = Int32Array.from(labels, (label) => {
    const j = slot.get(label);
    if (j === undefined) throw new RangeError(`example of class ${label}, which is not among the head's classes`);
    return j;
  });
  const rng = new SeededRng(o.seed).fork('head-sgd');
  const order = Array.from({ length: rows }, (_, i) => i);
  const logits = new Float64Array(k);
  const grad = new Float64Array(k * width);
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    rng.shuffle(order);
    for (let b = 0; b < rows; b += o.batchSize) {
      const batch = order.slice(b, b + o.batchSize);
      grad.fill(0);
      for (const r of batch) {
        const x = r * dim;
        let max = -Infinity;
        for (let j = 0; j < k; j++) {
          let z = w[j * width + dim]!;
          for (let i = 0; i < dim; i++) z += w[j * width + i]! * embeddings[x + i]!;
          logits[j] = z;
          if (z > max) max = z;
        }
        let total = 0;
        for (let j = 0; j < k; j++) total += (logits[j] = Math.exp(logits[j]! - max));
        for (let j = 0; j < k; j++) {
          const g = logits[j]! / total - (j === targets[r] ? 1 : 0);
          if (g === 0) continue;
          for (let i = 0; i < dim; i++) grad[j * width + i]! += g * embeddings[x + i]!;
          grad[j * width + dim]! += g;
        }
      }
      const step = o.learningRate / batch.length;
      for (let i = 0; i < w.length; i++) w[i]! -= step * grad[i]!;
    }
  }
  return new Map(classIds.map((c, j) => [c, w.slice(j * width, (j + 1) * width)]));
}

/**
 * A head travels and is held as a PrototypeTable one wider than the embeddings, each class's
 * "mean" being its row: the same tables, messages, codecs and merge carry it.
 */
export function headRowsOf(table: PrototypeTable): HeadRows {
  return new Map(table.classIds().map((c) => [c, table.prototype(c)!]));
}

const ROWS_PER_CHUNK = 4096;

/** The class with the highest score w·x + b for each embedding (ties to the lower class id); -1 with no classes. */
export async function predictLinearOnTensors(embeddings: Float32Array, rows: number, head: HeadRows, dim: number): Promise<Int32Array> {
  const classIds = [...head.keys()].sort((a, b) => a - b);
  const out = new Int32Array(rows).fill(-1);
  const k = classIds.length;
  if (k === 0 || rows === 0) return out;
  const weights = new Float32Array(dim * k);
  const bias = new Float32Array(k);
  classIds.forEach((c, j) => {
    const row = head.get(c)!;
    for (let i = 0; i < dim; i++) weights[i * k + j] = row[i]!;
    bias[j] = row[dim]!;
  });
  const wT = tf.tensor2d(weights, [dim, k]);
  const b = tf.tensor1d(bias);
  try {
    for (let start = 0; start < rows; start += ROWS_PER_CHUNK) {
      const n = Math.min(ROWS_PER_CHUNK, rows - start);
      const best = tf.tidy(() => tf.matMul(tf.tensor2d(embeddings.subarray(start * dim, (start + n) * dim), [n, dim]), wT).add(b).argMax(1));
      const slots = (await best.data()) as Int32Array;
      best.dispose();
      for (let r = 0; r < n; r++) out[start + r] = classIds[slots[r]!]!;
    }
  } finally {
    tf.dispose([wT, b]);
  }
  return out;
}

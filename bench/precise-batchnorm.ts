/**
 * The ablation's BatchNorm row: a trained glyph model with every BatchNorm layer's moving
 * statistics replaced by the exact statistics of the clean base-class training images. Writes the
 * model to OUT, to be scored by bench/backbone-quality.ts --model OUT.
 *
 *   npx tsx bench/precise-batchnorm.ts data/models/glyphs-conv4 /tmp/exp/m-shipped-pbn
 */
import * as tf from '@tensorflow/tfjs';
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageShape } from '../shared/embedding/backbone.js';
import { selectBackend } from '../shared/tensor/tensor-backend.js';
import { registerFileModelIO } from '../shared/tensor/file-model-io.js';
import { loadDataset } from '../shared/datasets/dataset-registry.js';
import { gatherImages } from '../shared/datasets/image-set.js';

/**
 * Replaces each BatchNorm layer's moving mean and variance with the exact statistics of its input
 * over `images` (Wu & Johnson 2021, "precise BatchNorm"), block by block, each block seeing the
 * output of the blocks before it with their statistics already replaced.
 *
 * Training keeps exponential moving averages (momentum 0.9) of per-episode statistics, so the model
 * is evaluated with the statistics of its last few, augmented, episodes; these are the statistics of
 * the clean images it will embed. Works on any Sequential model whose BatchNormalization layers
 * normalise the last axis; layers run in inference mode.
 *
 * @example
 * preciseBatchNorm(model, baseImages, 4000, { rows: 28, cols: 28, channels: 1 });
 */
function preciseBatchNorm(model: tf.LayersModel, images: Uint8Array, count: number, input: ImageShape, batch = 500): void {
  const per = input.rows * input.cols * input.channels;
  if (images.length !== count * per) throw new RangeError(`${images.length} bytes do not hold ${count} images of ${input.rows}×${input.cols}×${input.channels}`);
  if (count < 2) throw new RangeError('precise BatchNorm needs 2 images or more');
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  const bnAt = layers.flatMap((l, i) => (l.getClassName() === 'BatchNormalization' ? [i] : []));
  for (const at of bnAt) {
    const bn = layers[at]!;
    const axis = (bn.getConfig() as { axis: number | number[] }).axis;
    if (![-1, 3].includes(Array.isArray(axis) ? axis[0]! : axis)) throw new Error(`precise BatchNorm supports channels-last BatchNorm only (${bn.name} has axis ${String(axis)})`);
    let sum: Float64Array | undefined;
    let sumSq: Float64Array | undefined;
    let n = 0;
    for (let start = 0; start < count; start += batch) {
      const m = Math.min(batch, count - start);
      const values = tf.tidy(() => {
        let t: tf.Tensor = tf.tensor4d(images.subarray(start * per, (start + m) * per), [m, input.rows, input.cols, input.channels], 'int32').toFloat().div(255);
        for (let i = 0; i < at; i++) t = layers[i]!.apply(t, { training: false }) as tf.Tensor;
        return t;
      });
      const channels = values.shape[values.rank - 1]!;
      const data = values.dataSync();
      values.dispose();
      sum ??= new Float64Array(channels);
      sumSq ??= new Float64Array(channels);
      for (let i = 0; i < data.length; i += channels) {
        for (let c = 0; c < channels; c++) {
          const v = data[i + c]!;
          sum[c]! += v;
          sumSq[c]! += v * v;
        }
      }
      n += data.length / channels;
    }
    const mean = Array.from(sum!, (s) => s / n);
    // Unbiased, as training's moving variance is.
    const variance = Array.from(sumSq!, (s, c) => Math.max(0, (s - n * mean[c]! ** 2) / (n - 1)));
    const weights = bn.getWeights();
    const k = weights.length;
    const stats = [tf.tensor1d(mean), tf.tensor1d(variance)];
    bn.setWeights([...weights.slice(0, k - 2), ...stats]);
    tf.dispose(stats);
  }
}

const [source, out] = process.argv.slice(2);
if (!source || !out) throw new Error('usage: npx tsx bench/precise-batchnorm.ts MODEL_DIR OUT_DIR');
await selectBackend('wasm');
registerFileModelIO();
const model = await tf.loadLayersModel(`file://${join(source, 'model.json')}`);
const data = loadDataset({ name: 'glyphs' });
const base = new Set(data.baseClasses!);
const indices = Array.from({ length: data.train.count }, (_, i) => i).filter((i) => base.has(data.train.labels[i]!));
const input = { rows: data.train.rows, cols: data.train.cols, channels: data.train.channels };
preciseBatchNorm(model, gatherImages(data.train, indices), indices.length, input);
mkdirSync(out, { recursive: true });
await model.save(`file://${out}`);
if (existsSync(join(source, 'PRETRAINED.json'))) cpSync(join(source, 'PRETRAINED.json'), join(out, 'PRETRAINED.json'));
process.stdout.write(`${indices.length} base-class training images; wrote ${out}\n`);

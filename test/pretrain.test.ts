import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ImageSet, LabelledDataset } from '../shared/datasets/labelled-dataset.js';
import { SeededRng } from '../shared/learning/rng.js';
import { registerFileModelIO } from '../shared/tensor/file-model-io.js';
import { selectBackend } from '../shared/tensor/tensor-backend.js';
import { PRETRAIN_DEFAULTS, pretrainConv4, type PretrainConfig } from '../pretrain/episodic-trainer.js';
import { TrainableConv4 } from '../pretrain/trainable-conv4.js';
import { NO_AUGMENTATION } from '../pretrain/augment.js';
import { renderedPens } from '../pretrain/rendered-pens.js';
import { AllWayValidation } from '../pretrain/all-way-validation.js';
import { readImagePack } from '../shared/datasets/image-pack.js';
import { buildConv4 } from '../shared/embedding/conv4.js';

const SIZE = 16;

/**
 * 12 classes of 16×16 images: each class a fixed random stroke pattern, with noise and a random
 * shift. The ink is `255 − noise` over uniform noise up to `noise`.
 */
function syntheticDataset(noise = 55): LabelledDataset {
  const rng = new SeededRng(11);
  const classes = 12;
  const perClass = 20;
  const patterns = Array.from({ length: classes }, () => Array.from({ length: SIZE * SIZE }, () => (rng.next() < 0.25 ? 1 : 0)));
  const images = new Uint8Array(classes * perClass * SIZE * SIZE);
  const labels = new Uint16Array(classes * perClass);
  for (let c = 0; c < classes; c++) {
    for (let k = 0; k < perClass; k++) {
      const n = c * perClass + k;
      labels[n] = c;
      const dx = rng.int(3) - 1;
      const dy = rng.int(3) - 1;
      for (let y = 0; y < SIZE; y++) {
        for (let x = 0; x < SIZE; x++) {
          const sx = (x + dx + SIZE) % SIZE;
          const sy = (y + dy + SIZE) % SIZE;
          const ink = patterns[c]![sy * SIZE + sx]! * (255 - noise) + rng.next() * noise;
          images[n * SIZE * SIZE + y * SIZE + x] = Math.round(ink);
        }
      }
    }
  }
  const set: ImageSet = { images, labels, count: labels.length, rows: SIZE, cols: SIZE, channels: 1 };
  const empty: ImageSet = { images: new Uint8Array(0), labels: new Uint16Array(0), count: 0, rows: SIZE, cols: SIZE, channels: 1 };
  return { name: 'synthetic', source: 'memory', kind: 'custom', classNames: Array.from({ length: classes }, (_, i) => `c${i}`), train: set, test: empty };
}

const config: PretrainConfig = {
  ...PRETRAIN_DEFAULTS, ways: 5, shots: 2, queries: 3, episodes: 24, learningRate: 2e-3, halveEvery: 10,
  validationFraction: 0.4, validateEvery: 12, validationEpisodes: 20, checkpointEvery: 6, seed: 3,
};

async function weightsOf(dir: string): Promise<Float32Array[]> {
  const model = await tf.loadLayersModel(`file://${join(dir, 'model.json')}`);
  const out = await Promise.all(model.getWeights().map(async (w) => (await w.data()) as Float32Array));
  model.dispose();
  return out;
}

beforeAll(async () => {
  await selectBackend('wasm');
  registerFileModelIO();
});

describe('trainable conv4', () => {
  it('its hand-written BatchNorm gradient equals autodiff through the tf.layers model (cpu backend)', async () => {
    await tf.setBackend('cpu');
    try {
      const input = { rows: 16, cols: 16, channels: 1 };
      const model = buildConv4(input, 2);
      const net = TrainableConv4.fromModel(model, input);
      const x = tf.randomNormal([6, 16, 16, 1], 0, 1, 'float32', 4) as tf.Tensor4D;
      const target = tf.randomNormal([6, 64], 0, 1, 'float32', 5);
      const loss = (e: tf.Tensor): tf.Scalar => e.sub(target).square().sum() as tf.Scalar;
      const ours = tf.variableGrads(() => loss(net.forward(x, true)), net.trainable());
      const layerVars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const reference = tf.variableGrads(() => loss(model.apply(x, { training: true }) as tf.Tensor), layerVars);
      expect(ours.value.dataSync()[0]).toBeCloseTo(reference.value.dataSync()[0]!, 2);
      const a = net.trainable().map((v) => ours.grads[v.name]!.dataSync());
      const b = layerVars.map((v) => reference.grads[v.name]!.dataSync());
      expect(a).toHaveLength(12);
      a.forEach((g, i) => {
        let worst = 0;
        let scale = 0;
        for (let k = 0; k < g.length; k++) {
          worst = Math.max(worst, Math.abs(g[k]! - b[i]![k]!));
          scale = Math.max(scale, Math.abs(b[i]![k]!));
        }
        expect(scale).toBeGreaterThan(0);
        expect(worst / scale).toBeLessThan(1e-3);
      });
    } finally {
      await tf.setBackend('wasm');
    }
  });
});

describe('episodic ProtoNet pretraining', () => {
  const data = syntheticDataset();
  const base = Array.from({ length: 12 }, (_, i) => i);

  it('learns: training loss falls and held-out classes are recognised well above chance', async () => {
    const out = mkdtempSync(join(tmpdir(), 'protofed-pretrain-'));
    const { state } = await pretrainConv4(data, base, { ...config, episodes: 60, validateEvery: 20, checkpointEvery: 60 }, out);
    expect(state.validationClasses).toHaveLength(5);
    expect(state.trainClasses).toHaveLength(7);
    const [first, , last] = state.history;
    expect(last!.trainLoss).toBeLessThan(first!.trainLoss);
    // 5-way chance is 0.2; the validation classes were never trained on.
    expect(last!.validationAccuracy!).toBeGreaterThan(0.6);
    const saved = JSON.parse(readFileSync(join(out, 'checkpoint', 'trainer-state.json'), 'utf8')) as { episode: number };
    expect(saved.episode).toBe(60);
    // All-way validation over the 5 held-out classes (chance 0.2) is recorded at every validation.
    expect(state.history.every((h) => h.validationAllWay !== undefined)).toBe(true);
    expect(last!.validationAllWay!).toBeGreaterThan(0.6);
  }, 120_000);

  it('pretrains a conv4 of another width (filters): every convolution has that many, and so does the embedding', async () => {
    const out = mkdtempSync(join(tmpdir(), 'protofed-pretrain-width-'));
    await pretrainConv4(data, base, { ...config, episodes: 6, validateEvery: 6, checkpointEvery: 6, filters: 16 }, out, {}, { engine: 'fused', threads: 2 });
    const model = await tf.loadLayersModel(`file://${join(out, 'model.json')}`);
    expect(model.outputs[0]!.shape).toEqual([null, 16]);
    expect([1, 2, 3, 4].map((b) => model.getLayer(`conv${b}`).getWeights()[0]!.shape)).toEqual([[3, 3, 1, 16], [3, 3, 16, 16], [3, 3, 16, 16], [3, 3, 16, 16]]);
    model.dispose();
  }, 120_000);

  it('the model in the output folder is the checkpoint that validated best all-way (the latest of equal scores); the one to resume from is the last', async () => {
    // Clean images: every validation scores 1, so the last one is picked. Noisy ones (ink 55 over
    // noise up to 200, near chance): the second of four validations scores best, strictly (0.16,
    // 0.2, 0.16, 0.12 here).
    for (const [fixture, tied] of [[data, true], [syntheticDataset(200), false]] as const) {
      const out = mkdtempSync(join(tmpdir(), 'protofed-pretrain-best-'));
      const run = { ...config, validateEvery: 6 };
      const { state } = await pretrainConv4(fixture, base, run, out);
      const scores = state.history.map((h) => h.validationAllWay!);
      expect(scores).toHaveLength(4);
      const bestAt = scores.lastIndexOf(Math.max(...scores));
      expect(state.best).toEqual({ episode: state.history[bestAt]!.episode, validationAllWay: scores[bestAt] });
      if (tied) {
        expect(new Set(scores).size).toBe(1);
        expect(state.best!.episode).toBe(run.episodes);
      } else {
        expect(state.best!.episode).toBeLessThan(run.episodes);
      }
      // The same run stopped at the best episode: its last weights are the picked model.
      const stopped = mkdtempSync(join(tmpdir(), 'protofed-pretrain-stop-'));
      await pretrainConv4(fixture, base, { ...run, episodes: state.best!.episode }, stopped);
      const picked = await weightsOf(out);
      const atBest = await weightsOf(join(stopped, 'checkpoint'));
      const last = await weightsOf(join(out, 'checkpoint'));
      picked.forEach((w, i) => expect(Array.from(w)).toEqual(Array.from(atBest[i]!)));
      if (state.best!.episode < run.episodes) expect(Array.from(picked[0]!)).not.toEqual(Array.from(last[0]!));
    }
  }, 180_000);

  it('a run stopped and resumed from its checkpoint ends with the same weights as an uninterrupted run', async () => {
    const straight = mkdtempSync(join(tmpdir(), 'protofed-pretrain-a-'));
    await pretrainConv4(data, base, config, straight);
    const resumed = mkdtempSync(join(tmpdir(), 'protofed-pretrain-b-'));
    await pretrainConv4(data, base, { ...config, episodes: 12 }, resumed);
    const { resumedFrom } = await pretrainConv4(data, base, config, resumed);
    expect(resumedFrom).toBe(12);
    const a = await weightsOf(straight);
    const b = await weightsOf(resumed);
    expect(a).toHaveLength(b.length);
    a.forEach((w, i) => {
      let worst = 0;
      for (let k = 0; k < w.length; k++) worst = Math.max(worst, Math.abs(w[k]! - b[i]![k]!));
      expect(worst).toBeLessThan(1e-5);
    });
    await expect(pretrainConv4(data, base, { ...config, ways: 4 }, resumed)).rejects.toThrow(/checkpoint of a different run/);
  }, 120_000);

  it('renderPens draws the training classes of a generated glyph set again with other pens, and refuses a set the generator did not make', async () => {
    const glyphs = readImagePack(fileURLToPath(new URL('../data/glyphs-28', import.meta.url)));
    const classes = glyphs.baseClasses!.slice(0, 3);
    const sets = await renderedPens(glyphs, classes, [-2, 2]);
    expect(sets).toHaveLength(4);
    const inkOf = (set: ImageSet, i: number): number => set.images.subarray(i * 784, (i + 1) * 784).reduce((a, v) => a + v, 0);
    const own = classes.flatMap((c) => Array.from(glyphs.train.labels).flatMap((l, i) => (l === c ? [i] : [])));
    expect(Array.from(sets[0]!.labels)).toEqual(own.map((i) => glyphs.train.labels[i]));
    own.forEach((row, i) => {
      expect(inkOf(sets[0]!, i)).toBeLessThan(inkOf(glyphs.train, row));
      expect(inkOf(sets[2]!, i)).toBeGreaterThan(inkOf(glyphs.train, row));
    });
    const shape = { ...config, ways: 3, shots: 2, queries: 2, episodes: 3, validationFraction: 0, checkpointEvery: 3 };
    const weightsAfter = async (renderPens: number[]): Promise<Float32Array> => {
      const out = mkdtempSync(join(tmpdir(), 'protofed-pretrain-pens-'));
      const { state } = await pretrainConv4(glyphs, classes, { ...shape, renderPens }, out);
      expect(state.config.renderPens).toEqual(renderPens);
      return (await weightsOf(out))[0]!;
    };
    expect(Array.from(await weightsAfter([-2]))).not.toEqual(Array.from(await weightsAfter([])));
    await expect(pretrainConv4(data, base, { ...config, renderPens: [-1] }, mkdtempSync(join(tmpdir(), 'protofed-pretrain-nogen-'))))
      .rejects.toThrow(/not made by the glyph generator/);
  }, 120_000);

  it('validateOnPens scores the held-out classes with every renderPens pen too, and the mean of the pens picks the model', async () => {
    const glyphs = readImagePack(fileURLToPath(new URL('../data/glyphs-28', import.meta.url)));
    const classes = glyphs.baseClasses!.slice(0, 12);
    const run = { ...config, ways: 3, shots: 2, queries: 2, episodes: 4, validationFraction: 0.25, validateEvery: 2, validationEpisodes: 0, checkpointEvery: 4, renderPens: [-2, 2] };
    const plain = await pretrainConv4(glyphs, classes, run, mkdtempSync(join(tmpdir(), 'protofed-pretrain-vplain-')));
    const out = mkdtempSync(join(tmpdir(), 'protofed-pretrain-vpens-'));
    const { state } = await pretrainConv4(glyphs, classes, { ...run, validateOnPens: true }, out);
    expect(state.history).toHaveLength(2);
    state.history.forEach((h, i) => {
      const byPen = h.validationAllWayByPen!;
      expect(Object.keys(byPen).sort()).toEqual(['-2', '0', '2']);
      // Validation does not change training: the set's own images score what the plain run scored.
      expect(byPen['0']).toBe(plain.state.history[i]!.validationAllWay);
      expect(h.validationAllWay).toBeCloseTo((byPen['0']! + byPen['-2']! + byPen['2']!) / 3, 12);
    });
    // The last validation, recomputed from the last checkpoint on the held-out classes drawn with each pen.
    const model = await tf.loadLayersModel(`file://${join(out, 'checkpoint', 'model.json')}`);
    const net = TrainableConv4.fromModel(model, { rows: 28, cols: 28, channels: 1 });
    model.dispose();
    const embed = async (images: Uint8Array, n: number): Promise<Float32Array> => {
      const e = tf.tidy(() => net.forward(tf.tensor4d(images, [n, 28, 28, 1], 'int32').toFloat().div(255), false));
      const values = (await e.data()) as Float32Array;
      e.dispose();
      return values;
    };
    const drawn = await renderedPens(glyphs, state.validationClasses, [-2, 2]);
    expect(await new AllWayValidation([drawn[0]!, drawn[1]!], state.validationClasses).accuracy(embed)).toBe(state.history[1]!.validationAllWayByPen!['-2']);
    expect(await new AllWayValidation([drawn[2]!, drawn[3]!], state.validationClasses).accuracy(embed)).toBe(state.history[1]!.validationAllWayByPen!['2']);
    const means = state.history.map((h) => h.validationAllWay!);
    expect(state.best!.validationAllWay).toBe(Math.max(...means));
    expect(plain.state.history[0]!.validationAllWayByPen).toBeUndefined();
    await expect(pretrainConv4(glyphs, classes, { ...run, renderPens: [], validateOnPens: true }, mkdtempSync(join(tmpdir(), 'protofed-pretrain-vnone-'))))
      .rejects.toThrow(/validateOnPens .* needs renderPens/);
  }, 120_000);

  it('a checkpoint written before an augmentation option existed resumes (the option reads as off); one with it on does not resume a run without it', async () => {
    const augmented: PretrainConfig = { ...config, episodes: 12, augment: { ...NO_AUGMENTATION, strokeWidth: 0.5 } };
    const out = mkdtempSync(join(tmpdir(), 'protofed-pretrain-old-'));
    await pretrainConv4(data, base, { ...augmented, episodes: 6 }, out);
    const statePath = join(out, 'checkpoint', 'trainer-state.json');
    const written = readFileSync(statePath, 'utf8');
    const older = JSON.parse(written) as { config: { augment: Record<string, number> } };
    delete older.config.augment.pen;
    delete older.config.augment.ink;
    writeFileSync(statePath, JSON.stringify(older));
    expect((await pretrainConv4(data, base, augmented, out)).resumedFrom).toBe(6);
    const other = mkdtempSync(join(tmpdir(), 'protofed-pretrain-other-'));
    await pretrainConv4(data, base, { ...augmented, episodes: 6, augment: { ...augmented.augment!, pen: 0.5 } }, other);
    await expect(pretrainConv4(data, base, augmented, other)).rejects.toThrow(/checkpoint of a different run/);
  }, 120_000);
});

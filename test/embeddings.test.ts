import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../shared/datasets/dataset-registry.js';
import { createBackbone } from '../shared/embedding/backbone-registry.js';
import { buildConv4 } from '../shared/embedding/conv4.js';
import { EmbeddingStore } from '../shared/embedding/embedding-store.js';
import { EmbeddingPool } from '../shared/embedding/embedding-pool.js';
import { FoldedConvNet } from '../shared/embedding/folded-inference.js';
import { TfjsBackbone } from '../shared/embedding/tfjs-backbone.js';
import { registerFileModelIO } from '../shared/tensor/file-model-io.js';
import { activeBackend, BackendUnavailableError, selectBackend } from '../shared/tensor/tensor-backend.js';
import { SeededRng } from '../shared/learning/rng.js';
import { relativeError } from './support/vectors.js';

const shape = { rows: 28, cols: 28, channels: 1 as const };
const data = loadDataset({ name: 'fashion-mnist', dir: 'embedded' });

/** A conv4 with random weights and non-trivial BatchNorm statistics, saved as a LayersModel. */
/** conv4 with random BatchNorm gamma, beta and moving statistics, so that folding them is exercised. */
function withRandomBatchNorm(model: tf.LayersModel, seed: number): tf.LayersModel {
  const rng = new SeededRng(seed);
  for (let b = 1; b <= 4; b++) {
    const rand = (lo: number, hi: number) => tf.tensor1d(Array.from({ length: 64 }, () => lo + rng.next() * (hi - lo)));
    const weights = [rand(0.5, 1.5), rand(-0.2, 0.2), rand(-0.3, 0.3), rand(0.2, 2)];
    model.getLayer(`bn${b}`).setWeights(weights);
    tf.dispose(weights);
  }
  return model;
}

/** The largest difference between two outputs, relative to the largest value of the first (which must not be tiny). */
function relativeDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const { error, scale } = relativeError(a, b);
  expect(scale).toBeGreaterThan(0.1);
  return error / scale;
}

async function savedConv4(seed: number): Promise<{ dir: string; model: tf.LayersModel }> {
  const model = withRandomBatchNorm(buildConv4(shape, seed), seed);
  const dir = mkdtempSync(join(tmpdir(), 'protofed-conv4-'));
  await model.save(`file://${dir}`);
  return { dir, model };
}

beforeAll(async () => {
  await selectBackend('wasm');
  registerFileModelIO();
});

describe('tensor backends', () => {
  it('reports the backend in use, and a forced backend that cannot load fails with its reason', async () => {
    expect(await selectBackend('wasm')).toBe('wasm');
    expect(activeBackend()).toBe('wasm');
    let nodeBackend: unknown;
    try {
      nodeBackend = await selectBackend('tensorflow');
    } catch (err) {
      expect(err).toBeInstanceOf(BackendUnavailableError);
      expect((err as Error).message).toMatch(/tensor backend "tensorflow" is not available \(tensorflow: .+\)/);
    }
    // Where tfjs-node does install, the forced choice must give it.
    if (nodeBackend !== undefined) expect(nodeBackend).toBe('tensorflow');
    await selectBackend('wasm');
  });
});

describe('conv4 inference', () => {
  // 28×28 crops conv3 (7×7 → 6×6) and conv4 (3×3 → 2×2) to the rows their pools read; 84×84 crops conv3 (21 → 20).
  it.each([
    { rows: 28, channels: 1, count: 16 },
    { rows: 84, channels: 3, count: 4 },
  ])('BatchNorm folded into fused convolutions computes what model.predict computes ($rows×$rows×$channels)', async ({ rows, channels, count }) => {
    const input = { rows, cols: rows, channels };
    const model = withRandomBatchNorm(buildConv4(input, 3), 3);
    const x = tf.randomUniform([count, rows, rows, channels], 0, 1, 'float32', 5) as tf.Tensor4D;
    const a = await (model.predict(x) as tf.Tensor).data();
    for (const kernel of ['auto', 'off'] as const) {
      const folded = FoldedConvNet.tryFrom(model, { kernel })!;
      expect(folded).toBeDefined();
      // conv1 (1 or 3 channels in) stays in tfjs; blocks 2–4 (64 → 64) run in the Winograd kernel on wasm.
      expect(folded.engine).toBe(kernel === 'auto' ? 'winograd-wasm' : 'tfjs');
      const b = await folded.apply(x).data();
      expect(b.length).toBe(count * model.outputs[0]!.shape[1]!);
      expect(relativeDifference(a, b)).toBeLessThan(1e-4);
      folded.dispose();
    }
  });

  it('the Winograd kernel computes what tfjs computes, on the wasm backend and on the cpu backend', async () => {
    const model = withRandomBatchNorm(buildConv4(shape, 4), 4);
    const x = tf.randomUniform([40, 28, 28, 1], 0, 1, 'float32', 6) as tf.Tensor4D;
    const kernel = FoldedConvNet.tryFrom(model)!;
    const tfjs = FoldedConvNet.tryFrom(model, { kernel: 'off' })!;
    const a = await kernel.apply(x).data();
    const b = await tfjs.apply(x).data();
    expect(relativeDifference(b, a)).toBeLessThan(1e-5);
    expect(a.some((v, i) => v !== b[i])).toBe(true); // it did run: Winograd's sums round differently
    await selectBackend('cpu');
    try {
      expect(kernel.engine).toBe('winograd-wasm');
      expect(relativeDifference(b, await kernel.apply(x.clone()).data())).toBeLessThan(1e-5);
    } finally {
      await selectBackend('wasm');
      kernel.dispose();
      tfjs.dispose();
      x.dispose();
      model.dispose();
    }
  });

  it('gives 64-d at 28×28×1 and 1600-d at 84×84×3', () => {
    expect(buildConv4({ rows: 28, cols: 28, channels: 1 }).outputs[0]!.shape).toEqual([null, 64]);
    expect(buildConv4({ rows: 84, cols: 84, channels: 3 }).outputs[0]!.shape).toEqual([null, 1600]);
  });
});

describe('bring your own tfjs model', () => {
  it('loads a saved LayersModel, uses a named layer as the embedding, and rejects mismatches clearly', async () => {
    const { dir } = await savedConv4(4);
    const spec = {
      name: 'tfjs-model' as const, url: join(dir, 'model.json'), input: shape,
      normalization: { scale: 1 / 255, mean: [0], std: [1] }, batchSize: 64,
    };
    const whole = (await createBackbone(spec, shape)).backbone;
    expect(whole.dim).toBe(64);
    const inner = (await createBackbone({ ...spec, output: 'pool3' }, shape)).backbone;
    expect(inner.dim).toBe(3 * 3 * 64);
    expect(inner.modelHash).not.toBe(whole.modelHash);
    await expect(createBackbone({ ...spec, output: 'nope' }, shape)).rejects.toThrow(/no layer "nope".*conv1/);
    await expect(createBackbone({ ...spec, input: { rows: 32, cols: 32, channels: 1 as const } }, shape)).rejects.toThrow(/declares input 32×32×1, but the model takes 28×28×1/);
    await expect(createBackbone({ ...spec, url: join(dir, 'missing.json') }, shape)).rejects.toThrow(/cannot read the model/);
    await expect(createBackbone({ name: 'conv4', weights: join(dir, 'nothing-here'), batchSize: 8 }, shape)).rejects.toThrow(/no pretrained conv4.*protofed pretrain/);
  });

  it('loads a GraphModel (the converter\'s format) and embeds what the same ops compute directly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'protofed-graph-'));
    const rng = new SeededRng(21);
    const w = Float32Array.from({ length: 3 * 3 * 1 * 4 }, () => rng.next() - 0.5);
    const dims = (...d: number[]) => ({ dim: d.map((size) => ({ size: String(size) })) });
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    const modelJson = {
      format: 'graph-model',
      generatedBy: 'hand-written test fixture',
      modelTopology: {
        node: [
          { name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: dims(-1, 8, 8, 1) } } },
          { name: 'w', op: 'Const', attr: { dtype: { type: 'DT_FLOAT' }, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: dims(3, 3, 1, 4) } } } },
          { name: 'conv', op: 'Conv2D', input: ['x', 'w'], attr: {
            T: { type: 'DT_FLOAT' }, strides: { list: { i: ['1', '1', '1', '1'] } }, padding: { s: b64('SAME') },
            data_format: { s: b64('NHWC') }, dilations: { list: { i: ['1', '1', '1', '1'] } } } },
          { name: 'features', op: 'Relu', input: ['conv'], attr: { T: { type: 'DT_FLOAT' } } },
        ],
        library: {},
        versions: { producer: 1 },
      },
      weightsManifest: [{ paths: ['weights.bin'], weights: [{ name: 'w', shape: [3, 3, 1, 4], dtype: 'float32' }] }],
    };
    writeFileSync(join(dir, 'model.json'), JSON.stringify(modelJson));
    writeFileSync(join(dir, 'weights.bin'), Buffer.from(w.buffer));
    const input = { rows: 8, cols: 8, channels: 1 as const };
    const { backbone } = await createBackbone({
      name: 'tfjs-model', url: join(dir, 'model.json'), input, normalization: { scale: 1 / 255, mean: [0], std: [1] }, output: 'features', batchSize: 4,
    }, input);
    expect(backbone.dim).toBe(8 * 8 * 4);
    const images = Uint8Array.from({ length: 3 * 64 }, () => rng.int(256));
    const got = await backbone.embed(images, 3);
    const want = tf.tidy(() => tf.relu(tf.conv2d(tf.tensor4d(images, [3, 8, 8, 1], 'float32').div(255) as tf.Tensor4D, tf.tensor4d(w, [3, 3, 1, 4]), 1, 'same')).dataSync());
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    expect(worst).toBeLessThan(1e-5);
  });

  it('loads a model over HTTP and embeds exactly what the same model from disk embeds', async () => {
    const { dir } = await savedConv4(10);
    const server = createServer((req, res) => {
      const name = (req.url ?? '/').slice(1);
      if (name !== 'model.json' && name !== 'weights.bin') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200).end(readFileSync(join(dir, name)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const base = { name: 'tfjs-model' as const, input: shape, normalization: { scale: 1 / 255, mean: [0], std: [1] }, batchSize: 32 };
      const remote = (await createBackbone({ ...base, url: `http://127.0.0.1:${port}/model.json` }, shape)).backbone;
      const local = (await createBackbone({ ...base, url: join(dir, 'model.json') }, shape)).backbone;
      expect(remote.modelHash).toBe(local.modelHash);
      const images = data.test.images.subarray(0, 20 * 784);
      expect(Array.from(await remote.embed(images, 20))).toEqual(Array.from(await local.embed(images, 20)));
      await expect(createBackbone({ ...base, url: `http://127.0.0.1:${port}/nothing.json` }, shape)).rejects.toThrow(/cannot read the model/);
    } finally {
      server.close();
    }
  });

  it('the model hash changes with any weight and with the preprocessing', async () => {
    const { model } = await savedConv4(5);
    const opts = { name: 'm', model, input: shape, normalization: { scale: 1 / 255, mean: [0], std: [1] } };
    const a = await TfjsBackbone.create(opts);
    const b = await TfjsBackbone.create({ ...opts, normalization: { scale: 1 / 255, mean: [0.5], std: [1] } });
    const k = model.getLayer('conv2').getWeights()[0]!;
    model.getLayer('conv2').setWeights([k.add(1e-3)]);
    const c = await TfjsBackbone.create(opts);
    expect(new Set([a.modelHash, b.modelHash, c.modelHash]).size).toBe(3);
  });
});

describe('the embedding worker pool', () => {
  it('embeds on worker threads exactly what the main thread embeds, and refuses a different model', async () => {
    const { dir } = await savedConv4(8);
    const spec = { name: 'conv4' as const, weights: dir, batchSize: 64 };
    const { backbone } = await createBackbone(spec, shape, 'wasm');
    const images = data.train.images.subarray(0, 150 * 784);
    const pool = await EmbeddingPool.start(spec, shape, 'wasm', 2, backbone);
    try {
      expect(pool.threads).toBe(2);
      expect(pool.modelHash).toBe(backbone.modelHash);
      expect(Array.from(await pool.embed(images, 150))).toEqual(Array.from(await backbone.embed(images, 150)));
    } finally {
      await pool.close();
    }
    const other = await savedConv4(9);
    await expect(EmbeddingPool.start({ ...spec, weights: other.dir }, shape, 'wasm', 1, backbone)).rejects.toThrow(/worker computes model .* the main thread/);
  });
});

describe('the embedding cache', () => {
  it('a second store on the same cache computes zero embeddings and returns the same vectors; a changed model, or the same on other convolutions, computes again', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'protofed-cache-'));
    const { dir } = await savedConv4(6);
    const spec = { name: 'conv4' as const, weights: dir, batchSize: 128 };
    const indices = Array.from({ length: 300 }, (_, i) => i * 7);

    const first = new EmbeddingStore((await createBackbone(spec, shape)).backbone, data, { cacheDir });
    const a = await first.embed('train', indices);
    await first.embed('train', indices); // the same again: from memory
    expect(first.stats).toEqual({ computed: 300, fromCache: 0 });
    first.close();

    const second = new EmbeddingStore((await createBackbone(spec, shape)).backbone, data, { cacheDir });
    const b = await second.embed('train', indices);
    expect(second.stats.computed).toBe(0);
    expect(second.stats.fromCache).toBe(300);
    expect(Array.from(b)).toEqual(Array.from(a));
    // Test images are a different split: not in the cache.
    await second.embed('test', [0, 1, 2]);
    expect(second.stats.computed).toBe(3);
    second.close();

    const other = await savedConv4(7);
    const third = new EmbeddingStore((await createBackbone({ ...spec, weights: other.dir }, shape)).backbone, data, { cacheDir });
    const c = await third.embed('train', indices);
    expect(third.stats).toEqual({ computed: 300, fromCache: 0 });
    expect(Array.from(c)).not.toEqual(Array.from(a));
    third.close();

    // The same model on tfjs's convolutions rounds differently from the Winograd kernel: cached apart.
    const tfjsConv = new EmbeddingStore((await createBackbone({ ...spec, kernel: 'off' }, shape)).backbone, data, { cacheDir });
    const d = await tfjsConv.embed('train', indices);
    expect(tfjsConv.stats).toEqual({ computed: 300, fromCache: 0 });
    expect(Array.from(d)).not.toEqual(Array.from(a));
    tfjsConv.close();
  });
});

import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { SeededRng } from '../shared/learning/rng.js';
import { selectBackend } from '../shared/tensor/tensor-backend.js';
import { WinogradConvPool, type ConvPoolBlock } from '../shared/tensor/winograd-conv-pool.js';
import { compileKernel, KERNELS, kernelModule } from '../tools/kernel-compiler.js';
import { relativeError } from './support/vectors.js';

beforeAll(async () => {
  await selectBackend('wasm');
});

function randomBlock(rng: SeededRng, c: number, k: number): ConvPoolBlock {
  const normal = (n: number, s: number) => Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * s);
  return { filter: normal(9 * c * k, 1 / Math.sqrt(9 * c)), bias: normal(k, 0.1), inChannels: c, outChannels: k };
}

/** The same blocks in tfjs: a direct 'same' convolution, bias, ReLU, then a 2×2 'valid' max-pool. */
function tfjsBlocks(x: tf.Tensor4D, blocks: ConvPoolBlock[]): tf.Tensor4D {
  return tf.tidy(() => blocks.reduce((t, b) => tf.maxPool(
    tf.fused.conv2d({ x: t, filter: tf.tensor4d(b.filter, [3, 3, b.inChannels, b.outChannels]), bias: tf.tensor1d(b.bias), strides: 1, pad: 'same', activation: 'relu' }),
    2, 2, 'valid'), x));
}

describe('Winograd conv + pool kernel', () => {
  it.each([
    { what: 'even size, one block', n: 3, size: 14, channels: [64, 64] },
    { what: 'odd sizes (the pool drops the last row and column), three blocks chained as in conv4', n: 5, size: 14, channels: [64, 64, 64, 64] },
    { what: 'the fewest channels it takes, 7×9 images', n: 2, rows: 7, cols: 9, channels: [4, 8, 16] },
    { what: 'more images than one chunk, not a multiple of it', n: 37, size: 6, channels: [8, 8] },
    { what: 'conv4 at 84×84 from block 2 on', n: 2, size: 42, channels: [64, 64, 64, 64] },
  ])('computes what tfjs computes: $what', ({ n, size, rows = size, cols = size, channels }) => {
    const rng = new SeededRng(n * 100 + channels.length);
    const blocks = channels.slice(1).map((k, i) => randomBlock(rng, channels[i]!, k));
    const input = Float32Array.from({ length: n * rows! * cols! * channels[0]! }, () => rng.next() * 2 - 1);
    const want = tfjsBlocks(tf.tensor4d(input, [n, rows!, cols!, channels[0]!]), blocks);
    const got = new WinogradConvPool(blocks).run(input, n, rows!, cols!);
    expect([n, got.rows, got.cols, got.channels]).toEqual(want.shape);
    const { error, scale } = relativeError(want.dataSync(), got.data);
    expect(scale).toBeGreaterThan(0.1);
    expect(error / scale).toBeLessThan(1e-5);
    want.dispose();
  });

  it('refuses channel counts it cannot take, chains that do not connect, and input of the wrong size', () => {
    const rng = new SeededRng(1);
    expect(() => new WinogradConvPool([randomBlock(rng, 3, 64)])).toThrow(/in channels in 4s and out channels in 8s, not 3→64/);
    expect(() => new WinogradConvPool([randomBlock(rng, 8, 8), randomBlock(rng, 16, 8)])).toThrow(/block 1 takes 16 channels but block 0 gives 8/);
    const chain = new WinogradConvPool([randomBlock(rng, 4, 8)]);
    expect(() => chain.run(new Float32Array(10), 1, 2, 2)).toThrow(/10 values are not 1 images of 2×2×4/);
    expect(() => chain.run(new Float32Array(4), 1, 1, 1)).toThrow(/too small for a 2×2 pool/);
  });

  it('the committed wasm is what its AssemblyScript source compiles to', async () => {
    for (const k of KERNELS) {
      const wasm = await compileKernel(k.source);
      expect(readFileSync(k.module, 'utf8')).toBe(kernelModule(k.source, k.constant, wasm));
    }
  }, 60_000);
});

import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../shared/tensor/tensor-backend.js';
import { SeededRng } from '../shared/learning/rng.js';

type Case = { n: number; h: number; w: number; cin: number; cout: number; k: number; stride: number; pad: 'same' | 'valid' };

function seeded(shape: number[], seed: number): Float32Array {
  const rng = new SeededRng(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.next() * 2 - 1);
}

async function gradients(backend: 'cpu' | 'wasm', c: Case): Promise<{ dx: Float32Array; dw: Float32Array; db: Float32Array }> {
  await tf.setBackend(backend);
  const xShape = [c.n, c.h, c.w, c.cin];
  const wShape = [c.k, c.k, c.cin, c.cout];
  const x = tf.tensor4d(seeded(xShape, 1), xShape as [number, number, number, number]);
  const w = tf.tensor4d(seeded(wShape, 2), wShape as [number, number, number, number]);
  const b = tf.tensor1d(seeded([c.cout], 3));
  const target = tf.tensor(seeded([c.n * 100], 4));
  // A nonlinear loss, so the output gradient is not constant.
  const loss = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor): tf.Scalar => {
    const y = tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.stride, c.pad).add(bb).relu();
    const flat = y.reshape([-1]);
    return flat.square().mul(target.slice(0, 1).add(1.5)).sum().add(flat.mul(0.3).sin().sum()) as tf.Scalar;
  };
  const [dx, dw, db] = tf.grads(loss)([x, w, b]);
  const out = { dx: (await dx!.data()) as Float32Array, dw: (await dw!.data()) as Float32Array, db: (await db!.data()) as Float32Array };
  tf.dispose([x, w, b, target, dx!, dw!, db!]);
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('conv training on the wasm backend', () => {
  it('registers Conv2DBackpropFilter and a faster Conv2DBackpropInput for wasm', async () => {
    await selectBackend('wasm');
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
  });

  const cases: Case[] = [
    { n: 2, h: 9, w: 7, cin: 3, cout: 5, k: 3, stride: 1, pad: 'same' },
    { n: 3, h: 10, w: 10, cin: 2, cout: 4, k: 3, stride: 2, pad: 'same' },
    { n: 1, h: 8, w: 11, cin: 4, cout: 3, k: 3, stride: 1, pad: 'valid' },
    { n: 2, h: 12, w: 12, cin: 1, cout: 8, k: 5, stride: 2, pad: 'valid' },
    { n: 2, h: 8, w: 6, cin: 3, cout: 4, k: 5, stride: 1, pad: 'same' },
    { n: 2, h: 9, w: 9, cin: 2, cout: 3, k: 2, stride: 1, pad: 'same' },
    { n: 3, h: 14, w: 14, cin: 16, cout: 32, k: 3, stride: 1, pad: 'same' },
  ];
  for (const c of cases) {
    it(`gradients equal the cpu backend's within 1e-4 (${c.k}×${c.k}, stride ${c.stride}, ${c.pad})`, async () => {
      await selectBackend('wasm');
      const wasm = await gradients('wasm', c);
      const cpu = await gradients('cpu', c);
      const scale = Math.max(1, ...Array.from(cpu.dw).map(Math.abs));
      expect(maxAbsDiff(wasm.dw, cpu.dw) / scale).toBeLessThan(1e-4);
      expect(maxAbsDiff(wasm.dx, cpu.dx) / scale).toBeLessThan(1e-4);
      expect(maxAbsDiff(wasm.db, cpu.db) / scale).toBeLessThan(1e-4);
      // The gradient is not trivially zero.
      expect(Math.max(...Array.from(cpu.dw).map(Math.abs))).toBeGreaterThan(0.01);
    });
  }
});

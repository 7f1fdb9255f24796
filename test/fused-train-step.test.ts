import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { SeededRng } from '../shared/learning/rng.js';
import { selectBackend } from '../shared/tensor/tensor-backend.js';
import { buildConv4 } from '../shared/embedding/conv4.js';
import { prototypicalLoss } from '../pretrain/prototypical-loss.js';
import { TrainableConv4 } from '../pretrain/trainable-conv4.js';
import { adamUpdate, cloneParams, freshAdam, fusedConv4Gradients, fusedConv4Step, trainableArrays } from '../pretrain/fused-conv4-step.js';
import { ParallelConv4Trainer } from '../pretrain/parallel-trainer.js';
import { augmentImages, drawAugmentation, NO_AUGMENTATION } from '../pretrain/augment.js';

const input = { rows: 20, cols: 20, channels: 1 };
const layout = { ways: 3, shots: 2, queries: 2 };
const count = layout.ways * (layout.shots + layout.queries);

function images(seed: number): Uint8Array {
  const rng = new SeededRng(seed);
  return Uint8Array.from({ length: count * input.rows * input.cols }, () => (rng.next() < 0.3 ? 200 + rng.int(56) : rng.int(40)));
}

/**
 * Loss and gradients by autodiff through the tf.layers conv4 (training mode) and prototypicalLoss,
 * on wasm (whose conv gradient kernels test/wasm-conv-gradient.test.ts checks against cpu; the
 * cpu backend's own conv gradients take seconds even at this size).
 */
function reference(model: tf.LayersModel, pixels: Uint8Array): { loss: number; grads: Float32Array[] } {
  const x = tf.tidy(() => tf.tensor4d(pixels, [count, input.rows, input.cols, input.channels], 'int32').toFloat().div(255)) as tf.Tensor4D;
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => prototypicalLoss(model.apply(x, { training: true }) as tf.Tensor2D, layout).loss, vars);
  const out = { loss: value.dataSync()[0]!, grads: vars.map((v) => grads[v.name]!.dataSync() as Float32Array) };
  tf.dispose([x, value, ...Object.values(grads)]);
  return out;
}

function relativeError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    norm = Math.max(norm, Math.abs(b[i]!));
  }
  return diff / norm;
}

beforeAll(async () => {
  await selectBackend('wasm');
});

describe('fused conv4 training step', () => {
  for (const backend of ['wasm', 'cpu'] as const) {
    it(`has the loss and gradients of autodiff through the tf.layers model (${backend})`, async () => {
      await tf.setBackend('wasm');
      const model = buildConv4(input, 5);
      const net = TrainableConv4.fromModel(model, input);
      const params = net.params();
      const pixels = images(7);
      const ref = reference(model, pixels);
      await tf.setBackend(backend);
      const ours = fusedConv4Gradients(params, pixels, count, { layout, offset: 0, total: count }, input);
      expect(ours.loss).toBeCloseTo(ref.loss, 4);
      expect(ours.grads).toHaveLength(12);
      ours.grads.forEach((g, i) => expect(relativeError(g, ref.grads[i]!), `gradient ${i}`).toBeLessThan(2e-4));
      // The moving averages move as the current trainer's (TrainableConv4, unbiased variance) do.
      await tf.setBackend('wasm');
      const x = tf.tidy(() => tf.tensor4d(pixels, [count, input.rows, input.cols, input.channels], 'int32').toFloat().div(255)) as tf.Tensor4D;
      tf.dispose([x, net.forward(x, true)]);
      const moved = net.params();
      for (let b = 0; b < 4; b++) {
        expect(relativeError(params.movingMean[b]!, moved.movingMean[b]!)).toBeLessThan(1e-4);
        expect(relativeError(params.movingVariance[b]!, moved.movingVariance[b]!)).toBeLessThan(1e-4);
      }
      net.dispose();
      model.dispose();
    });
  }

  it('follows the loss of TrainableConv4 + tf.train.adam over a few episodes (wasm)', async () => {
    await tf.setBackend('wasm');
    const model = buildConv4(input, 6);
    const net = TrainableConv4.fromModel(model, input);
    const params = cloneParams(net.params());
    const adam = freshAdam(params);
    const optimizer = tf.train.adam(2e-3);
    for (let step = 0; step < 4; step++) {
      const pixels = images(20 + step);
      const x = tf.tidy(() => tf.tensor4d(pixels, [count, input.rows, input.cols, 1], 'int32').toFloat().div(255)) as tf.Tensor4D;
      const loss = optimizer.minimize(() => prototypicalLoss(net.forward(x, true), layout).loss, true, net.trainable())!;
      const ours = fusedConv4Step(params, adam, pixels, count, { layout, offset: 0, total: count }, input, 2e-3).loss;
      expect(ours).toBeCloseTo(loss.dataSync()[0]!, 2);
      tf.dispose([x, loss]);
    }
    optimizer.dispose();
    net.dispose();
    model.dispose();
  });

  it('holds no tensor memory from one step to the next (a leak aborted 20-way training after ~100 episodes)', async () => {
    await tf.setBackend('wasm');
    const model = buildConv4(input, 6);
    const net = TrainableConv4.fromModel(model, input);
    const params = cloneParams(net.params());
    const adam = freshAdam(params);
    net.dispose();
    model.dispose();
    fusedConv4Step(params, adam, images(40), count, { layout, offset: 0, total: count }, input, 1e-3);
    const before = tf.memory();
    for (let step = 0; step < 3; step++) fusedConv4Step(params, adam, images(41 + step), count, { layout, offset: 0, total: count }, input, 1e-3);
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numBytes).toBe(before.numBytes);
  });

  it('updates weights as tf.train.adam does, given the same gradients', () => {
    const rng = new SeededRng(3);
    const values = [Float32Array.from({ length: 50 }, () => rng.next() - 0.5), Float32Array.from({ length: 7 }, () => rng.next())];
    const variables = values.map((v) => tf.variable(tf.tensor1d(v)));
    const adam = { iterations: 0, m: values.map((v) => new Float32Array(v.length)), v: values.map((v) => new Float32Array(v.length)) };
    const optimizer = tf.train.adam(1e-2);
    for (let step = 0; step < 5; step++) {
      const grads = values.map((v) => Float32Array.from({ length: v.length }, () => (rng.next() - 0.5) * 10 ** (rng.int(6) - 4)));
      const named = variables.map((v, i) => ({ name: v.name, tensor: tf.tensor1d(grads[i]!) }));
      optimizer.applyGradients(named);
      tf.dispose(named.map((t) => t.tensor));
      adamUpdate(values, grads, adam, 1e-2);
    }
    values.forEach((v, i) => expect(relativeError(v, variables[i]!.dataSync() as Float32Array)).toBeLessThan(1e-5));
    optimizer.dispose();
    tf.dispose(variables);
  });

  it('takes the same steps on two worker threads that split each episode as on one thread', async () => {
    await tf.setBackend('wasm');
    const model = buildConv4(input, 8);
    const net = TrainableConv4.fromModel(model, input);
    const start = net.params();
    const params = cloneParams(start);
    const adam = freshAdam(params);
    const pool = await ParallelConv4Trainer.start({ params: cloneParams(start), adam: freshAdam(start), input, layout, backend: 'wasm', threads: 2 });
    try {
      for (let step = 0; step < 3; step++) {
        const pixels = images(40 + step);
        const one = fusedConv4Step(params, adam, pixels, count, { layout, offset: 0, total: count }, input, 2e-3);
        const two = await pool.step(pixels, 2e-3);
        if (step === 0) {
          // Same weights, and the forward pass sums the shards' statistics in float64: the same loss.
          expect(two.loss).toBe(one.loss);
          expect(two.accuracy).toBe(one.accuracy);
        } else {
          expect(two.loss).toBeCloseTo(one.loss, 3);
        }
      }
      const { params: pooled, adam: pooledAdam } = await pool.state();
      expect(pooledAdam.iterations).toBe(3);
      trainableArrays(pooled).forEach((a, i) => {
        let worst = 0;
        a.forEach((v, j) => { worst = Math.max(worst, Math.abs(v - trainableArrays(params)[i]![j]!)); });
        // Sums in another order; Adam turns float noise in near-zero gradients into steps of up to lr.
        expect(worst, `variable ${i}`).toBeLessThan(i === 11 ? 3 * 2e-3 : 2e-4);
      });
      for (let b = 0; b < 4; b++) expect(relativeError(pooled.movingVariance[b]!, params.movingVariance[b]!)).toBeLessThan(1e-4);
    } finally {
      await pool.close();
      net.dispose();
      model.dispose();
    }
  });
  it('a conv4 of 16 filters: two worker threads take the same first step as one thread', async () => {
    await tf.setBackend('wasm');
    const model = buildConv4(input, 8, 'he-normal', 16);
    const net = TrainableConv4.fromModel(model, input);
    const start = net.params();
    const pool = await ParallelConv4Trainer.start({ params: cloneParams(start), adam: freshAdam(start), input, layout, backend: 'wasm', threads: 2 });
    try {
      const pixels = images(50);
      const one = fusedConv4Step(cloneParams(start), freshAdam(start), pixels, count, { layout, offset: 0, total: count }, input, 2e-3);
      const two = await pool.step(pixels, 2e-3);
      expect(two.loss).toBe(one.loss);
      expect(two.accuracy).toBe(one.accuracy);
    } finally {
      await pool.close();
      net.dispose();
      model.dispose();
    }
  });

  it('workers that augment their own images take the same steps as a pool given images augmented beforehand', async () => {
    await tf.setBackend('wasm');
    const model = buildConv4(input, 9);
    const net = TrainableConv4.fromModel(model, input);
    const start = net.params();
    const augment = { ...NO_AUGMENTATION, pen: 0.5, ink: 0.5, elastic: 0.02, rotationDegrees: 5 };
    const start2 = () => ({ params: cloneParams(start), adam: freshAdam(start), input, layout, backend: 'wasm' as const, threads: 2 });
    const [inWorkers, beforehand] = await Promise.all([ParallelConv4Trainer.start(start2()), ParallelConv4Trainer.start(start2())]);
    try {
      for (let step = 0; step < 2; step++) {
        const pixels = images(60 + step);
        const draws = drawAugmentation(count, input, augment, new SeededRng(step).fork('augment'));
        const a = await inWorkers.step(pixels.slice(), 2e-3, layout, draws);
        const augmented = pixels.slice();
        augmentImages(augmented, count, input, augment, new SeededRng(step).fork('augment'));
        expect(Buffer.compare(Buffer.from(augmented), Buffer.from(pixels))).not.toBe(0);
        const b = await beforehand.step(augmented, 2e-3, layout);
        expect(a.loss).toBe(b.loss);
        expect(a.accuracy).toBe(b.accuracy);
      }
      const [x, y] = await Promise.all([inWorkers.state(), beforehand.state()]);
      trainableArrays(x.params).forEach((w, i) => expect(Array.from(w)).toEqual(Array.from(trainableArrays(y.params)[i]!)));
    } finally {
      await Promise.all([inWorkers.close(), beforehand.close()]);
      net.dispose();
      model.dispose();
    }
  });
});

import * as tf from '@tensorflow/tfjs';
import type { ImageShape } from '../shared/embedding/backbone.js';
import { rawTensor, rawView } from '../shared/tensor/raw-tensor.js';
import { convInputGradient } from '../shared/tensor/wasm-conv-gradients.js';
import {
  bnReluPoolBackward, bnReluPoolForward, identitySum, imagePatches, nhwcToChwn, nhwcToHwnc, prototypicalLossGrad,
  type BlockSaved, type EpisodeLayout, type ShardSum,
} from './conv4-fused-kernels.js';

const EPSILON = 1e-5;
const MOMENTUM = 0.9;
const BETA1 = 0.9;
const BETA2 = 0.999;
/** tf.train.adam's default on float32 backends (backend.epsilon()). */
const ADAM_EPSILON = 1e-7;

/**
 * conv4's variables as plain arrays, in TrainableConv4's order: per block the kernel
 * [3, 3, cin, 64], gamma, beta (trainable), then the moving mean and variance.
 */
export interface Conv4Params {
  kernels: Float32Array[];
  kernelShapes: [number, number, number, number][];
  gamma: Float32Array[];
  beta: Float32Array[];
  movingMean: Float32Array[];
  movingVariance: Float32Array[];
}

/** Adam's state as tf.train.adam keeps it: the step count and both moments of each trainable array. */
export interface AdamState {
  iterations: number;
  m: Float32Array[];
  v: Float32Array[];
  /** Adam's epsilon (default ADAM_EPSILON, tf.train.adam's). */
  epsilon?: number;
}

/** Where a shard's images sit in the episode (all of it on one thread). */
export interface ShardPlace {
  layout: EpisodeLayout;
  /** Index of the shard's first image in the episode. */
  offset: number;
  /** Images in the whole episode. */
  total: number;
}

/**
 * Milliseconds spent in each part of fusedConv4Gradients since the last reset, when `enabled`
 * (bench/train-profile.ts); the tensor backend runs synchronously, so wall time is kernel time.
 */
export const fusedStepTimings = { enabled: false, ms: {} as Record<string, number> };

let lapStart = 0;
function lap(name: string): void {
  if (!fusedStepTimings.enabled) return;
  const now = performance.now();
  if (name) fusedStepTimings.ms[name] = (fusedStepTimings.ms[name] ?? 0) + now - lapStart;
  lapStart = now;
}

export function cloneParams(p: Conv4Params): Conv4Params {
  return {
    kernels: p.kernels.map((a) => a.slice()),
    kernelShapes: p.kernelShapes.map((s) => [...s] as [number, number, number, number]),
    gamma: p.gamma.map((a) => a.slice()),
    beta: p.beta.map((a) => a.slice()),
    movingMean: p.movingMean.map((a) => a.slice()),
    movingVariance: p.movingVariance.map((a) => a.slice()),
  };
}

/** The trainable arrays in TrainableConv4.trainable()'s order. */
export function trainableArrays(p: Conv4Params): Float32Array[] {
  return p.kernels.flatMap((k, b) => [k, p.gamma[b]!, p.beta[b]!]);
}

export function freshAdam(p: Conv4Params): AdamState {
  const arrays = trainableArrays(p);
  return { iterations: 0, m: arrays.map((a) => new Float32Array(a.length)), v: arrays.map((a) => new Float32Array(a.length)) };
}

/**
 * One ProtoNet training step of conv4 with the convolutions (and their gradients) on the tensor
 * backend and everything else written out by hand (conv4-fused-kernels.ts): forward, loss,
 * backward and an Adam update, with no autodiff tape. The gradients are those of
 * `TrainableConv4.forward(x, true)` + `prototypicalLoss` (checked in test/fused-train-step.test.ts).
 *
 * On a shard of an episode (a worker of pretrain/parallel-trainer.ts), `sum` adds per-channel
 * statistics, embeddings and conv gradients across shards, so every shard computes the
 * gradients of the whole episode and applies the same update.
 *
 * @example
 * const r = fusedConv4Step(params, adam, images, 100, { layout, offset: 0, total: 100 }, input, 1e-3);
 */
export function fusedConv4Step(
  params: Conv4Params, adam: AdamState, images: Uint8Array, count: number, place: ShardPlace,
  input: ImageShape, learningRate: number, sum: ShardSum = identitySum,
): { loss: number; accuracy: number } {
  const { grads, loss, accuracy } = fusedConv4Gradients(params, images, count, place, input, sum);
  lap('');
  adamUpdate(trainableArrays(params), grads, adam, learningRate);
  lap('adam');
  return { loss, accuracy };
}

/**
 * The loss, accuracy and gradients (TrainableConv4.trainable() order) of one step, updating the
 * BatchNorm moving averages as a training-mode forward pass does.
 */
export function fusedConv4Gradients(
  params: Conv4Params, images: Uint8Array, count: number, place: ShardPlace, input: ImageShape,
  sum: ShardSum = identitySum,
): { grads: Float32Array[]; loss: number; accuracy: number } {
  lap('');
  const blocks = params.kernels.length;
  const kernels = params.kernels.map((k, b) => tf.tensor4d(k, params.kernelShapes[b]!));
  const acts: tf.Tensor4D[] = [rawTensor<tf.Rank.R4>([count, input.rows, input.cols, input.channels], (out) => {
    for (let i = 0; i < out.length; i++) out[i] = images[i]! / 255;
  })];
  const zs: tf.Tensor4D[] = [];
  const saved: BlockSaved[] = [];
  lap('input');
  try {
    for (let b = 0; b < blocks; b++) {
      const z = tf.conv2d(acts[b]!, kernels[b]!, 1, 'same');
      zs.push(z);
      lap(`conv${b + 1} forward`);
      const [n, h, w, c] = z.shape;
      let result: ReturnType<typeof bnReluPoolForward> | undefined;
      acts.push(rawTensor<tf.Rank.R4>([n, h >> 1, w >> 1, c], (out) => {
        result = bnReluPoolForward(rawView(z), { n, h, w, c }, params.gamma[b]!, params.beta[b]!, EPSILON, out, sum);
      }));
      saved.push(result!.saved);
      const count = result!.saved.total * h * w;
      const unbiased = count / Math.max(count - 1, 1);
      const mm = params.movingMean[b]!;
      const mv = params.movingVariance[b]!;
      for (let k = 0; k < c; k++) {
        mm[k] = mm[k]! * MOMENTUM + result!.saved.mean[k]! * (1 - MOMENTUM);
        mv[k] = mv[k]! * MOMENTUM + result!.variance[k]! * (1 - MOMENTUM) * unbiased;
      }
      lap(`bn+relu+pool${b + 1} forward`);
    }

    const last = acts[blocks]!;
    const dim = last.size / count;
    const all = new Float64Array(place.total * dim);
    all.set(rawView(last), place.offset * dim);
    sum(all);
    const { loss, accuracy, grad } = prototypicalLossGrad(all, dim, place.layout);
    let dOut: Float32Array | tf.Tensor4D = Float32Array.from(grad.subarray(place.offset * dim, (place.offset + count) * dim));
    lap('prototypical loss + gradient');

    const kernelGrads: Float32Array[] = [];
    const gammaGrads: Float32Array[] = [];
    const betaGrads: Float32Array[] = [];
    for (let b = blocks - 1; b >= 0; b--) {
      const z = zs[b]!;
      const [n, h, w, c] = z.shape;
      let g: { dGamma: Float32Array; dBeta: Float32Array } | undefined;
      const incoming: Float32Array | tf.Tensor4D = dOut;
      // The first conv needs no input gradient, and its filter gradient is cheaper as one matrix
      // product of dz ([c, pixels]) with the images' patches than as a convolution.
      const first = b === 0;
      const dz = rawTensor<tf.Rank.R4>(first ? [c, n * h * w, 1, 1] : z.shape, (out) => {
        const d = incoming instanceof Float32Array ? incoming : rawView(incoming);
        g = bnReluPoolBackward(d, rawView(z), { n, h, w, c }, params.gamma[b]!, saved[b]!, out, sum, first);
      });
      if (!(incoming instanceof Float32Array)) incoming.dispose();
      gammaGrads[b] = g!.dGamma;
      betaGrads[b] = g!.dBeta;
      lap(`bn+relu+pool${b + 1} backward`);
      kernelGrads[b] = first
        ? firstFilterGradient(dz, images, count, input, params.kernelShapes[0]!)
        : filterGradient(acts[b]!, dz, params.kernelShapes[b]!);
      lap(`conv${b + 1} filter gradient`);
      if (b > 0) dOut = convInputGradient(dz, kernels[b]!, acts[b]!.shape, 'same');
      dz.dispose();
      if (b > 0) lap(`conv${b + 1} input gradient`);
    }

    // Conv gradients are partial sums over this shard; BatchNorm's were summed already.
    const sizes = kernelGrads.map((k) => k.length);
    const flat = new Float64Array(sizes.reduce((a, b) => a + b, 0));
    let at = 0;
    for (const k of kernelGrads) {
      flat.set(k, at);
      at += k.length;
    }
    sum(flat);
    at = 0;
    const grads: Float32Array[] = [];
    for (let b = 0; b < blocks; b++) {
      grads.push(Float32Array.from(flat.subarray(at, at + sizes[b]!)), gammaGrads[b]!, betaGrads[b]!);
      at += sizes[b]!;
    }
    lap('gradient sum');
    return { grads, loss, accuracy };
  } finally {
    tf.dispose([...kernels, ...acts, ...zs]);
  }
}

/** The filter gradient of the first conv ('same', stride 1) from dz as [c, n·h·w]: dzᵀ·patches, transposed. */
function firstFilterGradient(dzChannels: tf.Tensor4D, images: Uint8Array, count: number, input: ImageShape, shape: [number, number, number, number]): Float32Array {
  const [kh, kw, cin, cout] = shape;
  const { top, left } = tf.backend_util.computeConv2DInfo([count, input.rows, input.cols, cin], shape, 1, 1, 'same').padInfo;
  const k = kh * kw * cin;
  const patches = tf.tensor2d(imagePatches(images, count, input.rows, input.cols, cin, kh, kw, top, left), [count * input.rows * input.cols, k]);
  // The reshaped view holds dz's data too: disposed with the rest, or every step leaks dz (40 MB at 20-way).
  const rows = dzChannels.reshape([cout, count * input.rows * input.cols]);
  const product = tf.matMul(rows, patches); // [cout, k]
  const values = product.dataSync();
  tf.dispose([patches, product, rows]);
  const out = new Float32Array(k * cout);
  for (let o = 0; o < cout; o++) for (let j = 0; j < k; j++) out[j * cout + o] = values[o * k + j]!;
  return out;
}

/**
 * The filter gradient of a 'same' stride-1 conv, as a convolution of the input (channels as the
 * batch) with the output gradient (as the filter), the padding left to the convolution. The two
 * transposes are done here: wasm's Transpose kernel takes longer than the convolution.
 */
function filterGradient(x: tf.Tensor4D, dz: tf.Tensor4D, shape: [number, number, number, number]): Float32Array {
  const [n, h, w, cin] = x.shape;
  const [kh, kw, , cout] = shape;
  const [, oh, ow] = dz.shape;
  const { top, left } = tf.backend_util.computeConv2DInfo(x.shape, shape, 1, 1, 'same').padInfo;
  const asBatch = rawTensor<tf.Rank.R4>([cin, h, w, n], (out) => nhwcToChwn(rawView(x), n, h, w, cin, out));
  const asFilter = rawTensor<tf.Rank.R4>([oh, ow, n, cout], (out) => nhwcToHwnc(rawView(dz), n, oh, ow, cout, out));
  const bottom = oh + kh - 1 - top - h;
  const right = ow + kw - 1 - left - w;
  const product = tf.conv2d(asBatch, asFilter, 1, [[0, 0], [top, bottom], [left, right], [0, 0]]); // [cin, kh, kw, cout]
  const values = product.dataSync();
  tf.dispose([asBatch, asFilter, product]);
  const out = new Float32Array(values.length);
  for (let ci = 0; ci < cin; ci++) {
    for (let t = 0; t < kh * kw; t++) out.set(values.subarray((ci * kh * kw + t) * cout, (ci * kh * kw + t + 1) * cout), (t * cin + ci) * cout);
  }
  return out;
}

/** tf.train.adam's update (beta1 0.9, beta2 0.999, epsilon 1e-7), in place. */
export function adamUpdate(values: Float32Array[], grads: Float32Array[], adam: AdamState, learningRate: number): void {
  adam.iterations++;
  const c1 = 1 - BETA1 ** adam.iterations;
  const c2 = 1 - BETA2 ** adam.iterations;
  const epsilon = adam.epsilon ?? ADAM_EPSILON;
  values.forEach((value, i) => {
    const g = grads[i]!;
    const m = adam.m[i]!;
    const v = adam.v[i]!;
    for (let j = 0; j < value.length; j++) {
      const gj = g[j]!;
      const mj = m[j]! * BETA1 + gj * (1 - BETA1);
      const vj = v[j]! * BETA2 + gj * gj * (1 - BETA2);
      m[j] = mj;
      v[j] = vj;
      value[j] = value[j]! - learningRate * (mj / c1) / (Math.sqrt(vj / c2) + epsilon);
    }
  });
}

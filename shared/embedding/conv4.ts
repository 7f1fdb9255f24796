import * as tf from '@tensorflow/tfjs';
import type { ImageShape } from './backbone.js';

/** conv4's filters per convolution, as Snell et al. (2017) and PyTorch's reference have it. */
export const CONV4_FILTERS = 64;

/** Output dimension of conv4 for an input: its filters × the spatial size left after four 2× poolings. */
export function conv4OutputDim(input: ImageShape, filters = CONV4_FILTERS): number {
  if (!Number.isInteger(filters) || filters < 1) throw new RangeError(`conv4 needs a positive whole number of filters, got ${filters}`);
  let h = input.rows;
  let w = input.cols;
  for (let i = 0; i < 4; i++) {
    h = Math.floor(h / 2);
    w = Math.floor(w / 2);
  }
  if (h < 1 || w < 1) throw new RangeError(`conv4 needs inputs of at least 16×16, got ${input.rows}×${input.cols}`);
  return filters * h * w;
}

/**
 * How conv4's kernels start. BatchNorm follows every convolution, so the scale does not change
 * what the network computes, but it sets how far each Adam step moves it: PyTorch's default
 * (kaiming-uniform with a = √5, bound 1/√fan_in) starts about 2.4× smaller than he-normal.
 */
export type Conv4Init = 'he-normal' | 'kaiming-uniform' | 'glorot-uniform';

function kernelInitializer(init: Conv4Init, seed: number): ReturnType<typeof tf.initializers.heNormal> {
  if (init === 'kaiming-uniform') return tf.initializers.varianceScaling({ scale: 1 / 3, mode: 'fanIn', distribution: 'uniform', seed });
  if (init === 'glorot-uniform') return tf.initializers.glorotUniform({ seed });
  return tf.initializers.heNormal({ seed });
}

/**
 * The classic 4-conv ProtoNet backbone (Snell et al. 2017): four blocks of conv3×3 (64 filters, or
 * `filters`), BatchNorm, ReLU and 2×2 max-pooling, then flatten. 64-d at 28×28×1, 1600-d at 84×84×3.
 *
 * @example
 * const model = buildConv4({ rows: 28, cols: 28, channels: 1 });
 * model.outputs[0].shape; // [null, 64]
 */
export function buildConv4(input: ImageShape, seed = 1, init: Conv4Init = 'he-normal', filters = CONV4_FILTERS): tf.LayersModel {
  conv4OutputDim(input, filters);
  const model = tf.sequential({ name: 'conv4' });
  for (let block = 0; block < 4; block++) {
    model.add(tf.layers.conv2d({
      name: `conv${block + 1}`,
      filters,
      kernelSize: 3,
      padding: 'same',
      // BatchNorm follows and cancels any bias.
      useBias: false,
      kernelInitializer: kernelInitializer(init, seed * 10 + block),
      ...(block === 0 ? { inputShape: [input.rows, input.cols, input.channels] } : {}),
    }));
    model.add(tf.layers.batchNormalization({ name: `bn${block + 1}`, momentum: 0.9, epsilon: 1e-5 }));
    model.add(tf.layers.activation({ name: `relu${block + 1}`, activation: 'relu' }));
    model.add(tf.layers.maxPooling2d({ name: `pool${block + 1}`, poolSize: 2, strides: 2 }));
  }
  model.add(tf.layers.flatten({ name: 'flatten' }));
  return model;
}

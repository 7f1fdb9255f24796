import * as tf from '@tensorflow/tfjs';
import type { ImageShape } from '../shared/embedding/backbone.js';
import { buildConv4 } from '../shared/embedding/conv4.js';
import type { Conv4Params } from './fused-conv4-step.js';

const EPSILON = 1e-5;
const MOMENTUM = 0.9;

interface Block {
  kernel: tf.Variable<tf.Rank.R4>;
  gamma: tf.Variable<tf.Rank.R1>;
  beta: tf.Variable<tf.Rank.R1>;
  movingMean: tf.Variable<tf.Rank.R1>;
  movingVariance: tf.Variable<tf.Rank.R1>;
}

/**
 * Per-channel sum of an NHWC tensor as a [1, C] × … matrix product: wasm's reductions over
 * N, H and W are several times slower than its matmul.
 */
function channelSum(t: tf.Tensor): tf.Tensor1D {
  const c = t.shape[t.rank - 1]!;
  const rows = t.size / c;
  return tf.matMul(tf.ones([1, rows]), t.reshape([rows, c])).reshape([c]);
}

/** The batch statistics of the latest training-mode forward pass, for the moving averages. */
let lastMoments: { mean: tf.Tensor; variance: tf.Tensor } | undefined;

/**
 * Training-mode BatchNorm with its gradient written out, so that backprop needs only channel
 * sums (as matmuls) and broadcast arithmetic. Autodiff through tf.moments goes through Tile and
 * slow reductions, the costliest kernels of a conv4 training step on wasm.
 */
const batchNormTrain = tf.customGrad(((x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, save: tf.GradSaveFunc) => {
  const n = x.size / x.shape[3]!;
  const mean = channelSum(x).div(n);
  const centred = x.sub(mean);
  const variance = channelSum(centred.square()).div(n);
  const inv = tf.rsqrt(variance.add(EPSILON));
  const xhat = centred.mul(inv);
  lastMoments = { mean: tf.keep(mean), variance: tf.keep(variance) };
  save([xhat, inv, gamma]);
  return {
    value: xhat.mul(gamma).add(beta),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xh, iv, g] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
      const dyXhat = dy.mul(xh);
      const dBeta = channelSum(dy);
      const dGamma = channelSum(dyXhat);
      const dx = dy.sub(dBeta.div(n)).sub(xh.mul(dGamma.div(n))).mul(g.mul(iv));
      return [dx, dGamma, dBeta];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor;

/**
 * conv4 as plain variables and ops, for episodic training on any backend. It converts to and from
 * the tf.layers model of shared/embedding/conv4.ts, which is what is saved and used for inference.
 *
 * @example
 * const net = TrainableConv4.fromModel(buildConv4(shape));
 * const embeddings = net.forward(images, true);
 */
export class TrainableConv4 {
  private constructor(readonly input: ImageShape, private readonly blocks: Block[]) {}

  static fromModel(model: tf.LayersModel, input: ImageShape): TrainableConv4 {
    const blocks: Block[] = [];
    for (let b = 1; b <= 4; b++) {
      const [kernel] = model.getLayer(`conv${b}`).getWeights() as [tf.Tensor4D];
      const [gamma, beta, movingMean, movingVariance] = model.getLayer(`bn${b}`).getWeights() as tf.Tensor1D[];
      blocks.push({
        kernel: tf.variable(kernel, true),
        gamma: tf.variable(gamma!, true),
        beta: tf.variable(beta!, true),
        movingMean: tf.variable(movingMean!, false),
        movingVariance: tf.variable(movingVariance!, false),
      });
    }
    return new TrainableConv4(input, blocks);
  }

  /** The trainable variables, in a fixed order. */
  trainable(): tf.Variable[] {
    return this.blocks.flatMap((b) => [b.kernel, b.gamma, b.beta]);
  }

  /** Every variable, trainable or not, in a fixed order (for checkpoints). */
  allVariables(): tf.Variable[] {
    return this.blocks.flatMap((b) => [b.kernel, b.gamma, b.beta, b.movingMean, b.movingVariance]);
  }

  /**
   * Embeds a batch. In training mode BatchNorm uses the batch's statistics and updates its
   * moving averages (as tf.layers does); otherwise it uses the moving averages.
   */
  forward(x: tf.Tensor4D, training: boolean): tf.Tensor2D {
    let t: tf.Tensor = x;
    for (const b of this.blocks) {
      t = tf.conv2d(t as tf.Tensor4D, b.kernel, 1, 'same');
      if (training) {
        const n = t.size / t.shape[3]!;
        t = batchNormTrain(t, b.gamma, b.beta);
        const moments = lastMoments!;
        tf.tidy(() => {
          b.movingMean.assign(b.movingMean.mul(MOMENTUM).add(moments.mean.mul(1 - MOMENTUM)));
          b.movingVariance.assign(b.movingVariance.mul(MOMENTUM).add(moments.variance.mul((1 - MOMENTUM) * n / Math.max(n - 1, 1))));
        });
        tf.dispose([moments.mean, moments.variance]);
      } else {
        t = tf.batchNorm(t, b.movingMean, b.movingVariance, b.beta, b.gamma, EPSILON);
      }
      t = tf.maxPool(tf.relu(t) as tf.Tensor4D, 2, 2, 'valid');
    }
    return t.reshape([x.shape[0], -1]);
  }

  /** A copy of every variable as plain arrays (for pretrain/fused-conv4-step.ts). */
  params(): Conv4Params {
    const read = (v: tf.Variable): Float32Array => (v.dataSync() as Float32Array).slice();
    return {
      kernels: this.blocks.map((b) => read(b.kernel)),
      kernelShapes: this.blocks.map((b) => [...b.kernel.shape] as [number, number, number, number]),
      gamma: this.blocks.map((b) => read(b.gamma)),
      beta: this.blocks.map((b) => read(b.beta)),
      movingMean: this.blocks.map((b) => read(b.movingMean)),
      movingVariance: this.blocks.map((b) => read(b.movingVariance)),
    };
  }

  /** Sets every variable from plain arrays of the same shapes. */
  assign(p: Conv4Params): void {
    tf.tidy(() => this.blocks.forEach((b, i) => {
      b.kernel.assign(tf.tensor4d(p.kernels[i]!, b.kernel.shape));
      b.gamma.assign(tf.tensor1d(p.gamma[i]!));
      b.beta.assign(tf.tensor1d(p.beta[i]!));
      b.movingMean.assign(tf.tensor1d(p.movingMean[i]!));
      b.movingVariance.assign(tf.tensor1d(p.movingVariance[i]!));
    }));
  }

  /** A tf.layers conv4 holding these weights (for saving and for inference). */
  toModel(): tf.LayersModel {
    const model = buildConv4(this.input, 1, 'he-normal', this.blocks[0]!.gamma.shape[0]);
    for (let i = 0; i < 4; i++) {
      const b = this.blocks[i]!;
      model.getLayer(`conv${i + 1}`).setWeights([b.kernel]);
      model.getLayer(`bn${i + 1}`).setWeights([b.gamma, b.beta, b.movingMean, b.movingVariance]);
    }
    return model;
  }

  dispose(): void {
    tf.dispose(this.allVariables());
  }
}

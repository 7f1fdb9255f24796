import * as tf from '@tensorflow/tfjs';
import { winogradFits, WinogradConvPool } from '../tensor/winograd-conv-pool.js';

type ConvStep = { kind: 'conv'; filter: tf.Tensor4D; bias: tf.Tensor1D; strides: [number, number]; pad: 'same' | 'valid'; relu: boolean; cropForPool?: { size: [number, number]; strides: [number, number] } };
type MaxPoolStep = { kind: 'maxPool'; size: [number, number]; strides: [number, number]; pad: 'same' | 'valid' };
type Step =
  | ConvStep
  | MaxPoolStep
  | { kind: 'relu' }
  | { kind: 'flatten' }
  /** conv3×3 → ReLU → pool 2×2 blocks run by the Winograd kernel; `steps` computes the same in tfjs. */
  | { kind: 'winograd'; chain: WinogradConvPool; steps: Step[] };

/** Which inference runs the blocks the Winograd kernel fits: 'auto' uses it on the wasm and cpu backends (tfjs-node's own convolutions stay). */
export type ConvKernelChoice = 'auto' | 'off';

/** Images per pass when the Winograd kernel runs (see batchLimit). */
const KERNEL_BATCH = 32;

/** Tensor backends on which the Winograd kernel beats the backend's own convolution. */
const KERNEL_BACKENDS = new Set(['wasm', 'cpu']);

/**
 * Inference for a Sequential conv net of conv2d → batchNormalization → relu → maxPooling2d blocks
 * (conv4 and its relatives), with each BatchNorm folded into its convolution's weights and bias
 * and the ReLU fused into the same kernel: 1.4× the images/s of `model.predict` on wasm here
 * (bench/results/embed.json). On the wasm and cpu backends, runs of conv3×3 → ReLU → pool 2×2
 * blocks with channels the Winograd kernel takes go to it (WinogradConvPool).
 * Mathematically the same function; float32 results agree to about 1e-6 relative.
 * A stride-1 'same' convolution whose output a 'valid' max-pool only partly reads (an odd 7×7
 * before a 2×2 pool at 28×28) computes only the rows and columns the pool reads.
 *
 * @example
 * const folded = FoldedConvNet.tryFrom(model); // undefined when the model has another shape
 * const embeddings = folded?.apply(batch);
 */
export class FoldedConvNet {
  private constructor(private readonly steps: Step[], private readonly kernel: ConvKernelChoice) {}

  /**
   * Folds the model, or returns undefined when a layer does not fit the pattern. Runs of
   * conv3×3 → ReLU → max-pool 2×2 blocks with channels the Winograd kernel takes
   * (winograd-conv-pool.ts) run in it on the wasm and cpu backends unless `kernel` is 'off'.
   */
  static tryFrom(model: tf.LayersModel, options: { kernel?: ConvKernelChoice } = {}): FoldedConvNet | undefined {
    // Inside tidy, the folded weights of a model that turns out not to fit are freed.
    const steps = tf.tidy(() => FoldedConvNet.fold(model) as unknown as tf.TensorContainer) as unknown as Step[] | undefined;
    const kernel = options.kernel ?? 'auto';
    return steps ? new FoldedConvNet(kernel === 'off' ? steps : withWinogradChains(steps), kernel) : undefined;
  }

  /** What runs the convolutions on the current tensor backend: 'winograd-wasm' when the kernel does any of them, else 'tfjs'. */
  get engine(): 'winograd-wasm' | 'tfjs' {
    return this.kernelActive() && this.steps.some((s) => s.kind === 'winograd') ? 'winograd-wasm' : 'tfjs';
  }

  /**
   * The most images a pass should take: with the kernel, 32, which keeps a pass's activations
   * small enough to stay in cache (in one scratch run at 84×84×3 the pool embedded 414–422
   * images/s with passes of 32–64 against 346 with passes of 256); no limit without it.
   */
  get batchLimit(): number | undefined {
    return this.engine === 'winograd-wasm' ? KERNEL_BATCH : undefined;
  }

  private kernelActive(): boolean {
    return this.kernel === 'auto' && KERNEL_BACKENDS.has(tf.getBackend());
  }

  private static fold(model: tf.LayersModel): Step[] | undefined {
    const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
    const steps: Step[] = [];
    for (let i = 0; i < layers.length; i++) {
      const layer = layers[i]!;
      const config = layer.getConfig() as Record<string, unknown>;
      switch (layer.getClassName()) {
        case 'Conv2D': {
          if (config.dataFormat !== 'channelsLast' || !isOne(config.dilationRate)) return undefined;
          const [kernel, maybeBias] = layer.getWeights() as [tf.Tensor4D, tf.Tensor1D?];
          let filter = kernel.clone();
          let bias = maybeBias ? maybeBias.clone() : tf.zeros([kernel.shape[3]]) as tf.Tensor1D;
          const next = layers[i + 1];
          if (next?.getClassName() === 'BatchNormalization') {
            const bn = next.getConfig() as { epsilon: number; center: boolean; scale: boolean; axis: number | number[] };
            if (![-1, 3].includes(Array.isArray(bn.axis) ? bn.axis[0]! : bn.axis)) return undefined;
            const w = next.getWeights();
            let k = 0;
            const gamma = bn.scale ? w[k++]! : tf.onesLike(bias);
            const beta = bn.center ? w[k++]! : tf.zerosLike(bias);
            const mean = w[k++]!;
            const variance = w[k++]!;
            const factor = tf.tidy(() => gamma.div(variance.add(bn.epsilon).sqrt()));
            const folded = tf.tidy(() => ({ filter: filter.mul(factor) as tf.Tensor4D, bias: beta.add(bias.sub(mean).mul(factor)) as tf.Tensor1D }));
            tf.dispose([filter, bias, factor]);
            filter = folded.filter;
            bias = folded.bias;
            i++;
          }
          let relu = config.activation === 'relu';
          if (!relu && config.activation !== 'linear') return undefined;
          if (!relu && isReluLayer(layers[i + 1])) {
            relu = true;
            i++;
          }
          steps.push({ kind: 'conv', filter, bias, strides: pair(config.strides), pad: config.padding as 'same' | 'valid', relu });
          break;
        }
        case 'MaxPooling2D': {
          if (config.dataFormat !== 'channelsLast') return undefined;
          const pool: Step = { kind: 'maxPool', size: pair(config.poolSize), strides: pair(config.strides ?? config.poolSize), pad: config.padding as 'same' | 'valid' };
          const before = steps[steps.length - 1];
          if (before?.kind === 'conv' && before.pad === 'same' && before.strides.every((s) => s === 1) && pool.pad === 'valid') before.cropForPool = { size: pool.size, strides: pool.strides };
          steps.push(pool);
          break;
        }
        case 'Activation':
          if (config.activation !== 'relu') return undefined;
          steps.push({ kind: 'relu' });
          break;
        case 'ReLU':
          if (config.maxValue != null) return undefined;
          steps.push({ kind: 'relu' });
          break;
        case 'Flatten':
          steps.push({ kind: 'flatten' });
          break;
        default:
          return undefined;
      }
    }
    return steps;
  }

  /** Runs the folded net on a batch (NHWC float input). */
  apply(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => {
      const t = this.run(this.steps, x, this.kernelActive());
      return t.rank === 2 ? (t as tf.Tensor2D) : t.reshape([t.shape[0]!, -1]);
    });
  }

  private run(steps: Step[], x: tf.Tensor, kernel: boolean): tf.Tensor {
    let t = x;
    for (const s of steps) {
      if (s.kind === 'winograd') {
        if (kernel) {
          const [n, h, w] = t.shape as [number, number, number, number];
          const out = s.chain.run(t.dataSync() as Float32Array, n, h, w);
          t = tf.tensor4d(out.data, [n, out.rows, out.cols, out.channels]);
        } else {
          t = this.run(s.steps, t, false);
        }
      } else if (s.kind === 'conv') {
        const pad = s.cropForPool ? cropPadding(t.shape as number[], s.filter.shape, s.cropForPool) : s.pad;
        t = tf.fused.conv2d({ x: t as tf.Tensor4D, filter: s.filter, bias: s.bias, strides: s.strides, pad, activation: s.relu ? 'relu' : 'linear' });
      } else if (s.kind === 'maxPool') {
        t = tf.maxPool(t as tf.Tensor4D, s.size, s.strides, s.pad);
      } else if (s.kind === 'relu') {
        t = tf.relu(t);
      } else {
        t = t.reshape([t.shape[0]!, -1]);
      }
    }
    return t;
  }

  dispose(): void {
    for (const s of this.steps.flatMap((s) => (s.kind === 'winograd' ? s.steps : [s]))) if (s.kind === 'conv') tf.dispose([s.filter, s.bias]);
  }
}

/** Whether a conv step and the pool after it are one block the Winograd kernel computes. */
function winogradBlock(conv: Step | undefined, pool: Step | undefined): conv is ConvStep {
  if (conv?.kind !== 'conv' || pool?.kind !== 'maxPool') return false;
  const [kh, kw, c, k] = conv.filter.shape;
  return kh === 3 && kw === 3 && winogradFits(c, k) && conv.relu && conv.pad === 'same' && conv.strides.every((v) => v === 1) && conv.cropForPool !== undefined
    && pool.pad === 'valid' && [...pool.size, ...pool.strides].every((v) => v === 2);
}

/** The steps with every run of Winograd blocks (conv + pool pairs) gathered into one kernel chain. */
function withWinogradChains(steps: Step[]): Step[] {
  const out: Step[] = [];
  for (let i = 0; i < steps.length;) {
    const run: Step[] = [];
    while (winogradBlock(steps[i], steps[i + 1])) {
      run.push(steps[i]!, steps[i + 1]!);
      i += 2;
    }
    if (run.length === 0) {
      out.push(steps[i++]!);
      continue;
    }
    const blocks = [];
    for (let b = 0; b < run.length; b += 2) {
      const conv = run[b] as ConvStep;
      blocks.push({ filter: conv.filter.dataSync() as Float32Array, bias: conv.bias.dataSync() as Float32Array, inChannels: conv.filter.shape[2], outChannels: conv.filter.shape[3] });
    }
    out.push({ kind: 'winograd', chain: new WinogradConvPool(blocks), steps: run });
  }
  return out;
}

type ExplicitPadding = [[number, number], [number, number], [number, number], [number, number]];

/**
 * The explicit padding of a stride-1 'same' convolution that leaves out the trailing output rows
 * and columns a following 'valid' pool never reads; 'same' when it reads them all.
 */
function cropPadding(shape: number[], filter: number[], pool: { size: [number, number]; strides: [number, number] }): 'same' | ExplicitPadding {
  const [, h, w] = shape as [number, number, number];
  const read = (size: number, axis: 0 | 1): number => size < pool.size[axis] ? size : size - ((size - pool.size[axis]) % pool.strides[axis]);
  const usedH = read(h, 0);
  const usedW = read(w, 1);
  if (usedH === h && usedW === w) return 'same';
  const { top, bottom, left, right } = tf.backend_util.computeConv2DInfo(shape as [number, number, number, number], filter as [number, number, number, number], 1, 1, 'same').padInfo;
  // 'same' gives as many output rows as input rows; each row of padding taken off the bottom
  // (or right) drops one trailing output row. Padding cannot go below zero.
  const b = bottom - (h - usedH);
  const r = right - (w - usedW);
  if (b < 0 || r < 0) return 'same';
  return [[0, 0], [top, b], [left, r], [0, 0]];
}

function isReluLayer(layer: tf.layers.Layer | undefined): boolean {
  if (!layer) return false;
  const c = layer.getConfig() as Record<string, unknown>;
  return (layer.getClassName() === 'Activation' && c.activation === 'relu') || (layer.getClassName() === 'ReLU' && c.maxValue == null);
}

function pair(v: unknown): [number, number] {
  if (typeof v === 'number') return [v, v];
  const a = v as number[];
  return [a[0]!, a[1] ?? a[0]!];
}

function isOne(v: unknown): boolean {
  return v === undefined || v === 1 || (Array.isArray(v) && v.every((d) => d === 1));
}

import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import type { Backbone, ImageShape } from './backbone.js';
import { FoldedConvNet, type ConvKernelChoice } from './folded-inference.js';

/** How raw u8 pixels become model input: `(pixel * scale − mean[c]) / std[c]`. */
export interface Normalization {
  scale: number;
  mean: number[];
  std: number[];
}

export interface TfjsBackboneOptions {
  name: string;
  model: tf.LayersModel | tf.GraphModel;
  /** The model's input (rows, cols, channels). Images of another size are resized to it. */
  input: ImageShape;
  normalization: Normalization;
  /** Output used as the embedding: a layer name (LayersModel) or node name (GraphModel); the model's output when absent. */
  output?: string | undefined;
  /** Images per pass (fewer when the Winograd kernel runs: FoldedConvNet.batchLimit). */
  batchSize?: number;
  /** Use BatchNorm folding when the model allows it (default true). */
  fold?: boolean;
  /** Run the conv blocks it fits in the Winograd wasm kernel on the wasm and cpu backends ('auto', the default), or leave them to tfjs ('off'). */
  kernel?: ConvKernelChoice | undefined;
}

/**
 * A frozen tfjs model as a backbone. Pixels are normalised, resized to the model's input when
 * needed, run in batches, and flattened. The model hash covers the architecture, every weight and
 * the preprocessing, so a changed model never matches an old one.
 *
 * @example
 * const model = await tf.loadLayersModel('file://models/conv4/model.json');
 * const backbone = await TfjsBackbone.create({ name: 'conv4', model, input: { rows: 28, cols: 28, channels: 1 },
 *   normalization: { scale: 1 / 255, mean: [0], std: [1] } });
 */
export class TfjsBackbone implements Backbone {
  readonly name: string;
  readonly input: ImageShape;
  readonly dim: number;
  readonly modelHash: string;
  private readonly run: (x: tf.Tensor4D) => tf.Tensor;
  private readonly folded: FoldedConvNet | undefined;
  private readonly batchSize: number;
  private readonly mean: tf.Tensor1D;
  private readonly std: tf.Tensor1D;
  private readonly scale: number;

  private constructor(o: TfjsBackboneOptions, run: (x: tf.Tensor4D) => tf.Tensor, folded: FoldedConvNet | undefined, dim: number, hash: string) {
    this.name = o.name;
    this.input = o.input;
    this.run = run;
    this.folded = folded;
    this.dim = dim;
    this.modelHash = hash;
    this.batchSize = o.batchSize ?? 256;
    this.mean = tf.tensor1d(expand(o.normalization.mean, o.input.channels, 'mean'));
    this.std = tf.tensor1d(expand(o.normalization.std, o.input.channels, 'std'));
    this.scale = o.normalization.scale;
  }

  /** Wraps a model; checks that its input matches the declared one and finds the embedding size. */
  static async create(o: TfjsBackboneOptions): Promise<TfjsBackbone> {
    const { model, input } = o;
    const declared = [input.rows, input.cols, input.channels];
    const inputShape = model.inputs[0]?.shape;
    if (!inputShape || inputShape.length !== 4) {
      throw new Error(`backbone "${o.name}": the model must take one NHWC image input, but its input shape is ${JSON.stringify(inputShape)}`);
    }
    const modelShape = inputShape.slice(1);
    if (modelShape.some((d, i) => d != null && d !== -1 && d !== declared[i])) {
      throw new Error(`backbone "${o.name}": the scenario declares input ${declared.join('×')}, but the model takes ${modelShape.map((d) => d ?? '?').join('×')}`);
    }
    let run: (x: tf.Tensor4D) => tf.Tensor;
    let folded: FoldedConvNet | undefined;
    if (model instanceof tf.GraphModel) {
      run = (x) => (o.output ? model.execute(x, o.output) : model.predict(x)) as tf.Tensor;
    } else {
      let layers = model;
      if (o.output) {
        let layer: tf.layers.Layer;
        try {
          layer = model.getLayer(o.output);
        } catch {
          throw new Error(`backbone "${o.name}": the model has no layer "${o.output}" (layers: ${model.layers.map((l) => l.name).join(', ')})`);
        }
        layers = tf.model({ inputs: model.inputs, outputs: layer.output as tf.SymbolicTensor });
      }
      folded = o.fold === false ? undefined : FoldedConvNet.tryFrom(layers, { kernel: o.kernel ?? 'auto' });
      run = folded ? (x) => folded!.apply(x) : (x) => layers.predict(x) as tf.Tensor;
    }
    const probe = tf.tidy(() => run(tf.zeros([1, input.rows, input.cols, input.channels])).reshape([1, -1]));
    const dim = probe.shape[1]!;
    probe.dispose();
    const hash = await modelHash(model, { input, normalization: o.normalization, output: o.output ?? null });
    return new TfjsBackbone(o, run, folded, dim, hash);
  }

  /** 'winograd-wasm' when the Winograd kernel computes some of the convolutions on the current backend. */
  get engine(): string | undefined {
    return this.folded?.engine === 'winograd-wasm' ? 'winograd-wasm' : undefined;
  }

  async embed(images: Uint8Array, count: number): Promise<Float32Array> {
    if (count === 0) return new Float32Array(0);
    const per = images.length / count;
    if (!Number.isInteger(per)) throw new RangeError(`backbone "${this.name}": ${images.length} bytes do not hold ${count} images`);
    const rows = Math.round(Math.sqrt(per / this.input.channels));
    const shape = this.imageShape(per, rows);
    const out = new Float32Array(count * this.dim);
    const perPass = Math.min(this.batchSize, this.folded?.batchLimit ?? Infinity);
    for (let start = 0; start < count; start += perPass) {
      const n = Math.min(perPass, count - start);
      const batch = tf.tidy(() => {
        let x: tf.Tensor4D = tf.tensor4d(images.subarray(start * per, (start + n) * per), [n, shape.rows, shape.cols, shape.channels], 'int32').toFloat();
        if (shape.channels === 1 && this.input.channels === 3) x = x.tile([1, 1, 1, 3]);
        if (shape.rows !== this.input.rows || shape.cols !== this.input.cols) x = tf.image.resizeBilinear(x, [this.input.rows, this.input.cols], true);
        x = x.mul(this.scale).sub(this.mean).div(this.std);
        return this.run(x).reshape([n, this.dim]);
      });
      out.set(await batch.data() as Float32Array, start * this.dim);
      batch.dispose();
    }
    return out;
  }

  dispose(): void {
    this.folded?.dispose();
    tf.dispose([this.mean, this.std]);
  }

  /** Works out the stored image shape: square images of the model's channels, or greyscale expanded to RGB. */
  private imageShape(per: number, rows: number): ImageShape {
    if (rows * rows * this.input.channels === per) return { rows, cols: rows, channels: this.input.channels };
    const greyRows = Math.round(Math.sqrt(per));
    if (this.input.channels === 3 && greyRows * greyRows === per) return { rows: greyRows, cols: greyRows, channels: 1 };
    if (per === this.input.rows * this.input.cols * this.input.channels) return this.input;
    throw new RangeError(`backbone "${this.name}": images of ${per} bytes cannot be read as ${this.input.rows}×${this.input.cols}×${this.input.channels}`);
  }
}

function expand(values: number[], channels: number, what: string): number[] {
  if (values.length === 1) return Array(channels).fill(values[0]);
  if (values.length !== channels) throw new Error(`normalization.${what} has ${values.length} values for ${channels} channels`);
  return values;
}

/** SHA-256 over the architecture, every weight (name, shape, bytes) and the preprocessing. */
export async function modelHash(model: tf.LayersModel | tf.GraphModel, preprocessing: object): Promise<string> {
  const h = createHash('sha256');
  h.update(JSON.stringify(preprocessing));
  if (model instanceof tf.GraphModel) {
    const named = model.weights;
    for (const name of Object.keys(named).sort()) {
      for (const t of named[name]!) {
        h.update(`${name}:${t.shape.join('x')}:${t.dtype};`);
        h.update(new Uint8Array((await t.data()).buffer as ArrayBuffer));
      }
    }
    h.update(JSON.stringify(model.outputNodes));
  } else {
    // Layer and model names get fresh suffixes on every load, so they stay out of the hash.
    const anonymous = (config: unknown): unknown =>
      JSON.parse(JSON.stringify(config, (key, value: unknown) => (key === 'name' ? undefined : value)));
    h.update(JSON.stringify(model.layers.map((l) => [l.getClassName(), anonymous(l.getConfig())])));
    for (const w of model.weights) {
      const value = w.read();
      h.update(`${value.shape.join('x')}:${value.dtype};`);
      const data = await value.data();
      h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  }
  return `sha256:${h.digest('hex')}`;
}

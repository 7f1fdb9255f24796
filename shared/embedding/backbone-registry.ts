import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Backbone, ImageShape } from './backbone.js';
import type { Scenario } from '../scenario/scenario-config.js';
import { registerFileModelIO } from '../tensor/file-model-io.js';
import { selectBackend, type BackendChoice } from '../tensor/tensor-backend.js';
import { PixelsBackbone } from './pixels-backbone.js';
import { TfjsBackbone } from './tfjs-backbone.js';
import { loadHttpModel, loadModelByFormat, tfjsModelBackbone } from './model-loading.js';

export type BackboneSpec = Scenario['backbone'];

/** conv4 takes pixels scaled to [0, 1]; its BatchNorm does the rest. */
export const CONV4_NORMALIZATION = { scale: 1 / 255, mean: [0], std: [1] };

export interface CreatedBackbone {
  backbone: Backbone;
  /** The tensor backend that runs it, or a note that none is needed. */
  tensorBackend: string;
}

/**
 * Builds the backbone a scenario names, for images of the dataset's shape. Learned backbones
 * select the tensor backend first (`backend`: auto, tensorflow, wasm or cpu).
 *
 * @example
 * const { backbone, tensorBackend } = await createBackbone({ name: 'conv4', weights: '/abs/models/conv4', batchSize: 256 }, shape, 'auto');
 */
export async function createBackbone(
  spec: BackboneSpec,
  data: ImageShape,
  backend: BackendChoice = 'auto',
  /** HTTP headers for fetching a remote model (a remote client authenticating to its coordinator). */
  headers: Record<string, string> = {},
  /** How to fetch a remote model (one that trusts the coordinator's certificate authority). */
  get: typeof fetch = fetch,
): Promise<CreatedBackbone> {
  // Even pixels needs a tensor backend: nearest-prototype evaluation runs as matrix products.
  const tensorBackend = await selectBackend(backend);
  if (spec.name === 'pixels') return { backbone: new PixelsBackbone(data), tensorBackend };
  registerFileModelIO();
  if (spec.name === 'conv4') {
    const jsonPath = join(spec.weights, 'model.json');
    if (!existsSync(jsonPath)) {
      throw new Error(`no pretrained conv4 at ${spec.weights} (model.json is missing); make it with \`protofed pretrain <scenario>\``);
    }
    const model = await tf.loadLayersModel(`file://${jsonPath}`);
    const input = modelInput(model, 'conv4');
    const backbone = await TfjsBackbone.create({
      name: 'conv4', model, input, normalization: CONV4_NORMALIZATION, batchSize: spec.batchSize, kernel: spec.kernel,
    });
    return { backbone, tensorBackend };
  }
  const backbone = await tfjsModelBackbone(spec, await loadAnyModel(spec.url, headers, get));
  return { backbone, tensorBackend };
}

function modelInput(model: tf.LayersModel, name: string): ImageShape {
  const shape = model.inputs[0]?.shape;
  if (!shape || shape.length !== 4 || shape.slice(1).some((d) => d == null)) {
    throw new Error(`${name}: the model's input must be a fixed NHWC image shape, got ${JSON.stringify(shape)}`);
  }
  return { rows: shape[1]!, cols: shape[2]!, channels: shape[3]! };
}

/** Loads a LayersModel or a GraphModel from a path, a file:// URL or an http(s) URL. */
async function loadAnyModel(url: string, headers: Record<string, string>, get: typeof fetch): Promise<tf.LayersModel | tf.GraphModel> {
  if (/^https?:\/\//.test(url)) return loadHttpModel(url, headers, get);
  const location = url.startsWith('file://') ? url : `file://${url}`;
  return loadModelByFormat(url, async () => readFileSync(location.slice('file://'.length), 'utf8'), location);
}

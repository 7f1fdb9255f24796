import * as tf from '@tensorflow/tfjs';
import type { Scenario } from '../scenario/scenario-config.js';
import { TfjsBackbone } from './tfjs-backbone.js';

/** A `tfjs-model` backbone as a scenario or a run's setup names it. */
export type TfjsModelSpec = Extract<Scenario['backbone'], { name: 'tfjs-model' }>;

/**
 * Loads a LayersModel or a GraphModel, telling them apart by model.json's `format`: `readText`
 * reads model.json, and tfjs loads the model from `source`. Reads no file itself, so a browser
 * client loads its coordinator's model with it too.
 */
export async function loadModelByFormat(url: string, readText: () => Promise<string>, source: string | tf.io.IOHandler): Promise<tf.LayersModel | tf.GraphModel> {
  let format: unknown;
  try {
    format = (JSON.parse(await readText()) as { format?: unknown }).format;
  } catch (err) {
    throw new Error(`cannot read the model at ${url}: ${(err as Error).message}`);
  }
  if (format === 'graph-model') return tf.loadGraphModel(source);
  if (format === 'layers-model' || format === undefined) return tf.loadLayersModel(source);
  throw new Error(`the model at ${url} has format "${String(format)}"; expected "layers-model" or "graph-model"`);
}

/** A model served over HTTP(S), fetched with `headers` through `get` (a remote client fetching its coordinator's model). */
export function loadHttpModel(url: string, headers: Record<string, string>, get: typeof fetch): Promise<tf.LayersModel | tf.GraphModel> {
  return loadModelByFormat(url, async () => {
    const response = await get(url, { headers });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.text();
  }, tf.io.http(url, { requestInit: { headers }, fetchFunc: get }));
}

/** The backbone of a loaded `tfjs-model`. */
export function tfjsModelBackbone(spec: TfjsModelSpec, model: tf.LayersModel | tf.GraphModel): Promise<TfjsBackbone> {
  return TfjsBackbone.create({
    name: `tfjs-model:${spec.url}`, model, input: spec.input, normalization: spec.normalization, output: spec.output, batchSize: spec.batchSize, kernel: spec.kernel,
  });
}

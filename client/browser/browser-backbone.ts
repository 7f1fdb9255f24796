import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type { ImageShape } from '../../shared/embedding/backbone.js';
import type { CreatedBackbone } from '../../shared/embedding/backbone-registry.js';
import { loadHttpModel, tfjsModelBackbone } from '../../shared/embedding/model-loading.js';
import { PixelsBackbone } from '../../shared/embedding/pixels-backbone.js';
import type { RunSetup } from '../../shared/protocol/run-setup.js';
import type { BackendChoice } from '../../shared/tensor/tensor-backend.js';

/**
 * The tensor backend in a browser, for the run's `backend` (the setup's): `cpu` when the run says
 * so, else WebAssembly (its .wasm files served by the coordinator at `wasmPath`, no CDN), else
 * plain JavaScript. Not WebGL: its float16 textures and GPU arithmetic would give other
 * embeddings than the Node clients' wasm and cpu. Returns the backend in use and, when it is not
 * the one the run computes on, why (cpu and wasm round differently in the last bits, so the
 * federated table then differs from an all-Node run's by that much).
 */
export async function selectBrowserBackend(wasmPath: string, run: BackendChoice): Promise<{ backend: string; note?: string }> {
  tf.enableProdMode();
  if (run === 'cpu') {
    await tf.setBackend('cpu');
    await tf.ready();
    return { backend: tf.getBackend() };
  }
  let failure: string;
  try {
    setWasmPaths(wasmPath);
    if (await tf.setBackend('wasm')) {
      await tf.ready();
      return { backend: tf.getBackend(), ...(run === 'tensorflow' ? { note: 'the run computes on native TensorFlow, which a browser does not have' } : {}) };
    }
    failure = 'it did not initialise';
  } catch (err) {
    failure = (err as Error).message ?? String(err);
  }
  await tf.setBackend('cpu');
  await tf.ready();
  return { backend: tf.getBackend(), note: `wasm did not load (${failure}); embeddings on cpu differ from wasm's in the last bits` };
}

/**
 * The backbone a run's setup names, built in a browser: pixels, or the tfjs model the
 * coordinator serves (fetched with the client's key, through `get`, which counts its bytes).
 */
export async function browserBackbone(
  spec: RunSetup['backbone'], shape: ImageShape, tensorBackend: string, headers: Record<string, string>, get: typeof fetch,
): Promise<CreatedBackbone> {
  if (spec.name === 'pixels') return { backbone: new PixelsBackbone(shape), tensorBackend };
  if (spec.name === 'tfjs-model' && /^https?:\/\//.test(spec.url)) {
    return { backbone: await tfjsModelBackbone(spec, await loadHttpModel(spec.url, headers, get)), tensorBackend };
  }
  throw new Error(`a browser cannot load the backbone "${spec.name}" of this run from the coordinator (it serves conv4 and model.json files as tfjs-model URLs)`);
}

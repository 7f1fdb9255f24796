import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type { ImageShape } from '../../shared/embedding/backbone.js';
import type { CreatedBackbone } from '../../shared/embedding/backbone-registry.js';
import { loadHttpModel, tfjsModelBackbone } from '../../shared/embedding/model-loading.js';
import { PixelsBackbone } from '../../shared/embedding/pixels-backbone.js';
import type { RunSetup } from '../../shared/protocol/run-setup.js';

/**
 * The tensor backend in a browser: WebAssembly (its .wasm files served by the coordinator at
 * `wasmPath`, no CDN), else plain JavaScript. Not WebGL: its float16 textures and GPU
 * arithmetic would give other embeddings than the Node clients' wasm and cpu. Returns the backend
 * in use and, when wasm failed, why.
 */
export async function selectBrowserBackend(wasmPath: string): Promise<{ backend: string; wasmFailure?: string }> {
  tf.enableProdMode();
  let wasmFailure: string | undefined;
  try {
    setWasmPaths(wasmPath);
    if (await tf.setBackend('wasm')) {
      await tf.ready();
      return { backend: tf.getBackend() };
    }
    wasmFailure = 'it did not initialise';
  } catch (err) {
    wasmFailure = (err as Error).message ?? String(err);
  }
  await tf.setBackend('cpu');
  await tf.ready();
  return { backend: tf.getBackend(), wasmFailure };
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

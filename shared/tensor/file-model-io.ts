import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';

const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';

let routed = false;

function toPath(url: string): string {
  return url.startsWith('file://') ? fileURLToPath(url.startsWith('file:///') ? url : `file://${resolve(url.slice(7))}`) : url;
}

/**
 * Saves and loads tfjs models as `model.json` plus `weights.bin` in a folder: the same layout
 * as tfjs-node's `file://` handler, for backends (wasm, cpu) that have no file system support.
 *
 * @example
 * registerFileModelIO();
 * await model.save('file://models/conv4');
 * const again = await tf.loadLayersModel('file://models/conv4/model.json');
 */
export function registerFileModelIO(): void {
  if (routed) return;
  routed = true;
  // tfjs-node registers its own file:// routers; both write the same files.
  // A router answers null for URLs it does not handle (the typings say otherwise).
  const notMine = null as unknown as tf.io.IOHandler;
  tf.io.registerSaveRouter((url) => (typeof url === 'string' && url.startsWith('file://') ? fileSaveHandler(toPath(url)) : notMine));
  tf.io.registerLoadRouter((url) => (typeof url === 'string' && url.startsWith('file://') ? fileLoadHandler(toPath(url)) : notMine));
}

/** A handler that writes `model.json` and `weights.bin` into `dir`. */
export function fileSaveHandler(dir: string): tf.io.IOHandler {
  return {
    save: async (artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> => {
      if (artifacts.modelTopology instanceof ArrayBuffer) throw new Error('saving binary model topologies is not supported');
      mkdirSync(dir, { recursive: true });
      const weights = artifacts.weightData ? tf.io.CompositeArrayBuffer.join(artifacts.weightData) : new ArrayBuffer(0);
      const json = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        trainingConfig: artifacts.trainingConfig,
        userDefinedMetadata: artifacts.userDefinedMetadata,
        weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
      };
      // Weights first: a model.json never points at weights that are not there yet.
      writeFileSync(join(dir, WEIGHTS_BIN), Buffer.from(weights));
      writeFileSync(join(dir, MODEL_JSON), JSON.stringify(json));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  };
}

/** A handler that reads a `model.json` (a path to the file, or to its folder) and its weight files. */
export function fileLoadHandler(path: string): tf.io.IOHandler {
  const jsonPath = path.endsWith('.json') ? path : join(path, MODEL_JSON);
  return {
    load: async (): Promise<tf.io.ModelArtifacts> => {
      let modelJSON: tf.io.ModelJSON;
      try {
        modelJSON = JSON.parse(readFileSync(jsonPath, 'utf8')) as tf.io.ModelJSON;
      } catch (err) {
        throw new Error(`cannot read model ${jsonPath}: ${(err as Error).message}`);
      }
      return tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const buffers: ArrayBuffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const p of group.paths) {
            const file = join(dirname(jsonPath), p);
            let bytes: Buffer;
            try {
              bytes = readFileSync(file);
            } catch (err) {
              throw new Error(`cannot read weights ${file} named by ${jsonPath}: ${(err as Error).message}`);
            }
            buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
          }
        }
        return [specs, tf.io.CompositeArrayBuffer.join(buffers)];
      });
    },
  };
}

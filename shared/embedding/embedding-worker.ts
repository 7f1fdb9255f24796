/**
 * A worker thread that runs one backbone (see embedding-pool.ts). It builds the backbone from the
 * same spec as the main thread, answers with its model hash, then embeds batches on request.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ImageShape } from './backbone.js';
import type { BackendChoice } from '../tensor/tensor-backend.js';
import { createBackbone, type BackboneSpec } from './backbone-registry.js';

export interface EmbeddingWorkerData {
  spec: BackboneSpec;
  data: ImageShape;
  backend: BackendChoice;
}

export type WorkerRequest = { id: number; images: Uint8Array; count: number };
export type WorkerReply =
  | { kind: 'ready'; modelHash: string; dim: number }
  | { kind: 'done'; id: number; vectors: Float32Array }
  | { kind: 'failed'; id: number; error: string };

const port = parentPort!;
const { spec, data, backend } = workerData as EmbeddingWorkerData;
try {
  const { backbone } = await createBackbone(spec, data, backend);
  port.postMessage({ kind: 'ready', modelHash: backbone.modelHash, dim: backbone.dim } satisfies WorkerReply);
  port.on('message', (request: WorkerRequest) => {
    backbone.embed(request.images, request.count).then(
      (vectors) => port.postMessage({ kind: 'done', id: request.id, vectors } satisfies WorkerReply, [vectors.buffer as ArrayBuffer]),
      (err: Error) => port.postMessage({ kind: 'failed', id: request.id, error: err.message } satisfies WorkerReply),
    );
  });
} catch (err) {
  port.postMessage({ kind: 'failed', id: -1, error: (err as Error).message } satisfies WorkerReply);
}

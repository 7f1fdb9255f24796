/**
 * A worker thread of pretrain/parallel-trainer.ts: it holds a copy of conv4's weights and Adam's
 * state, trains on its shard of each episode, and meets the other workers (shard-sum.ts) wherever
 * a step needs a sum over the whole episode. Every worker ends each step with the same weights.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import type { ImageShape } from '../shared/embedding/backbone.js';
import { selectBackend, type BackendChoice } from '../shared/tensor/tensor-backend.js';
import type { EpisodeLayout } from './conv4-fused-kernels.js';
import { applyAugmentation, type AugmentDraws } from './augment.js';
import { fusedConv4Step, type AdamState, type Conv4Params } from './fused-conv4-step.js';
import { ShardGroupFailed, shardSum } from './shard-sum.js';

export interface TrainWorkerData {
  rank: number;
  threads: number;
  memory: SharedArrayBuffer;
  slotLength: number;
  params: Conv4Params;
  adam: AdamState;
  input: ImageShape;
  backend: BackendChoice;
}

export type TrainWorkerRequest =
  | { kind: 'step'; id: number; images: Uint8Array; count: number; offset: number; total: number; layout: EpisodeLayout; learningRate: number; augment?: AugmentDraws }
  | { kind: 'state'; id: number };

export type TrainWorkerReply =
  | { kind: 'ready'; backend: string }
  | { kind: 'stepped'; id: number; loss: number; accuracy: number; ms: number; waitedMs: number }
  | { kind: 'state'; id: number; params: Conv4Params; adam: AdamState }
  | { kind: 'failed'; id: number; error: string };

const port = parentPort!;
const { rank, threads, memory, slotLength, params, adam, input, backend } = workerData as TrainWorkerData;
const sum = shardSum(memory, rank, threads, slotLength);
try {
  const name = await selectBackend(backend);
  await tf.setBackend(name);
  port.postMessage({ kind: 'ready', backend: name } satisfies TrainWorkerReply);
  port.on('message', (request: TrainWorkerRequest) => {
    try {
      if (request.kind === 'state') {
        port.postMessage({ kind: 'state', id: request.id, params, adam } satisfies TrainWorkerReply);
        return;
      }
      const { images, count, offset, total, layout, learningRate, augment } = request;
      const started = performance.now();
      if (augment) applyAugmentation(images, input, augment);
      const waited = sum.waitedMs;
      const { loss, accuracy } = fusedConv4Step(params, adam, images, count, { layout, offset, total }, input, learningRate, sum);
      const ms = performance.now() - started;
      port.postMessage({ kind: 'stepped', id: request.id, loss, accuracy, ms, waitedMs: sum.waitedMs - waited } satisfies TrainWorkerReply);
    } catch (err) {
      if (!(err instanceof ShardGroupFailed)) sum.fail();
      port.postMessage({ kind: 'failed', id: request.id, error: (err as Error).message } satisfies TrainWorkerReply);
    }
  });
} catch (err) {
  sum.fail();
  port.postMessage({ kind: 'failed', id: -1, error: (err as Error).message } satisfies TrainWorkerReply);
}

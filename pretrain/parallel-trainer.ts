import type { Worker } from 'node:worker_threads';
import { entryPoint, startWorker } from '../shared/entry-points.js';
import type { ImageShape } from '../shared/embedding/backbone.js';
import { conv4OutputDim } from '../shared/embedding/conv4.js';
import type { BackendChoice } from '../shared/tensor/tensor-backend.js';
import type { EpisodeLayout } from './conv4-fused-kernels.js';
import type { AdamState, Conv4Params } from './fused-conv4-step.js';
import { sliceDraws, type AugmentDraws } from './augment.js';
import { shardSumMemory } from './shard-sum.js';
import type { TrainWorkerData, TrainWorkerReply, TrainWorkerRequest } from './train-worker.js';

const workerEntry = entryPoint(import.meta.url, './train-worker');

export interface ParallelTrainerOptions {
  params: Conv4Params;
  adam: AdamState;
  input: ImageShape;
  /** The episode shape that sizes the shared memory; steps may use smaller ones. */
  layout: EpisodeLayout;
  backend: BackendChoice;
  threads: number;
}

/**
 * Data-parallel conv4 ProtoNet training inside one episode: each worker thread takes a contiguous
 * share of the episode's images, and the threads add up BatchNorm statistics, embeddings and
 * gradients through shared memory (synchronised BatchNorm), so a step computes the gradients of
 * the whole episode, as one thread would, and every worker applies the same Adam update.
 *
 * @example
 * const trainer = await ParallelConv4Trainer.start({ params, adam, input, layout, backend: 'wasm', threads: 2 });
 * const { loss } = await trainer.step(episode.images, 1e-3);
 * const { params: trained } = await trainer.state();
 * await trainer.close();
 */
export class ParallelConv4Trainer {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: TrainWorkerReply) => void; reject: (e: Error) => void }>();
  private failure: Error | undefined;

  private constructor(private readonly workers: Worker[], private readonly options: ParallelTrainerOptions) {
    workers.forEach((w) => {
      w.on('message', (reply: TrainWorkerReply) => {
        if (reply.kind === 'ready') return;
        const p = this.pending.get(reply.id);
        if (!p) return;
        this.pending.delete(reply.id);
        if (reply.kind === 'failed') p.reject(new Error(`training worker: ${reply.error}`));
        else p.resolve(reply);
      });
      w.on('error', (err) => this.failAll(err));
    });
  }

  get threads(): number {
    return this.workers.length;
  }

  static async start(options: ParallelTrainerOptions): Promise<ParallelConv4Trainer> {
    const { threads, input, layout } = options;
    const total = layout.ways * (layout.shots + layout.queries);
    const filters = options.params.gamma[3]!.length;
    const kernelValues = options.params.kernels.reduce((a, k) => a + k.length, 0);
    // The largest shard sum: conv gradients, the episode's embeddings, or BatchNorm's per-channel moments and count.
    const slotLength = Math.max(kernelValues, total * conv4OutputDim(input, filters), 2 * filters + 1);
    const memory = shardSumMemory(threads, slotLength);
    const workers = Array.from({ length: threads }, (_, rank) => {
      const workerData = {
        rank, threads, memory, slotLength, params: options.params, adam: options.adam, input, backend: options.backend,
      } satisfies TrainWorkerData;
      return startWorker(workerEntry, workerData);
    });
    try {
      await Promise.all(workers.map((w) => new Promise<void>((resolve, reject) => {
        const onMessage = (reply: TrainWorkerReply): void => {
          w.off('message', onMessage);
          if (reply.kind === 'failed') reject(new Error(`training worker failed to start: ${reply.error}`));
          else resolve();
        };
        w.on('message', onMessage);
        w.once('error', reject);
      })));
    } catch (err) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw err;
    }
    return new ParallelConv4Trainer(workers, options);
  }

  /**
   * One training step on an episode (its images in EpisodeSampler's order); the loss and accuracy
   * of the episode. With `augment`, each worker first applies the draws of its own images, so the
   * pixel work of augmentation is split between the threads too.
   */
  async step(images: Uint8Array, learningRate: number, layout: EpisodeLayout = this.options.layout, augment?: AugmentDraws): Promise<{ loss: number; accuracy: number; workers: { ms: number; waitedMs: number }[] }> {
    if (this.failure) throw this.failure;
    const total = layout.ways * (layout.shots + layout.queries);
    const per = images.length / total;
    const share = Math.ceil(total / this.workers.length);
    const replies = await Promise.all(this.workers.map((w, rank) => {
      const offset = Math.min(rank * share, total);
      const count = Math.min(share, total - offset);
      const shard = images.slice(offset * per, (offset + count) * per);
      const draws = augment && sliceDraws(augment, offset, count);
      const transfer = [shard.buffer, ...(draws ? [draws.stroke, draws.pen, draws.ink, draws.mapped, draws.maps].map((a) => a.buffer) : [])] as ArrayBuffer[];
      return this.request(w, { kind: 'step', id: 0, images: shard, count, offset, total, layout, learningRate, ...(draws ? { augment: draws } : {}) }, transfer);
    }));
    const stepped = replies as Extract<TrainWorkerReply, { kind: 'stepped' }>[];
    return { loss: stepped[0]!.loss, accuracy: stepped[0]!.accuracy, workers: stepped.map((r) => ({ ms: r.ms, waitedMs: r.waitedMs })) };
  }

  /** The weights and optimizer state (every worker holds the same). */
  async state(): Promise<{ params: Conv4Params; adam: AdamState }> {
    const reply = await this.request(this.workers[0]!, { kind: 'state', id: 0 }, []);
    const { params, adam } = reply as Extract<TrainWorkerReply, { kind: 'state' }>;
    return { params, adam };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private request(w: Worker, message: TrainWorkerRequest, transfer: ArrayBuffer[]): Promise<TrainWorkerReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ ...message, id }, transfer);
    });
  }

  private failAll(err: Error): void {
    this.failure = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

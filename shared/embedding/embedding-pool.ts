import type { Worker } from 'node:worker_threads';
import { entryPoint, startWorker } from '../entry-points.js';
import type { Backbone, ImageShape } from './backbone.js';
import type { BackendChoice } from '../tensor/tensor-backend.js';
import type { BackboneSpec } from './backbone-registry.js';
import type { EmbeddingWorkerData, WorkerReply, WorkerRequest } from './embedding-worker.js';

const workerEntry = entryPoint(import.meta.url, './embedding-worker');

/**
 * A backbone spread over worker threads, one model per thread, so that bulk embedding uses every
 * core (the wasm and cpu backends compute on one thread each). A batch is split into equal
 * chunks, one per worker. Every worker must report the same model hash as the main thread's
 * backbone, or the pool refuses to start.
 *
 * @example
 * const pool = await EmbeddingPool.start(spec, shape, 'wasm', 2, backbone);
 * const vectors = await pool.embed(images, 512);
 * await pool.close();
 */
export class EmbeddingPool implements Backbone {
  readonly name: string;
  readonly dim: number;
  readonly modelHash: string;
  readonly engine: string | undefined;
  readonly input: ImageShape;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: Float32Array) => void; reject: (e: Error) => void }>();

  private constructor(private readonly workers: Worker[], reference: Backbone) {
    this.name = reference.name;
    this.dim = reference.dim;
    this.modelHash = reference.modelHash;
    this.engine = reference.engine;
    this.input = reference.input;
    for (const w of workers) {
      w.on('message', (reply: WorkerReply) => {
        if (reply.kind === 'ready') return;
        const p = this.pending.get(reply.id);
        if (!p) return;
        this.pending.delete(reply.id);
        if (reply.kind === 'done') p.resolve(reply.vectors);
        else p.reject(new Error(`embedding worker: ${reply.error}`));
      });
      w.on('error', (err) => this.failAll(err));
    }
  }

  get threads(): number {
    return this.workers.length;
  }

  static async start(spec: BackboneSpec, data: ImageShape, backend: BackendChoice, threads: number, reference: Backbone): Promise<EmbeddingPool> {
    const workerData = { spec, data, backend } satisfies EmbeddingWorkerData;
    const workers = Array.from({ length: threads }, () => startWorker(workerEntry, workerData));
    try {
      await Promise.all(workers.map((w) => new Promise<void>((resolve, reject) => {
        const onMessage = (reply: WorkerReply): void => {
          w.off('message', onMessage);
          if (reply.kind === 'failed') reject(new Error(`embedding worker failed to start: ${reply.error}`));
          else if (reply.kind === 'ready' && reply.modelHash !== reference.modelHash) {
            reject(new Error(`embedding worker computes model ${reply.modelHash}, the main thread ${reference.modelHash}`));
          } else resolve();
        };
        w.on('message', onMessage);
        w.once('error', reject);
      })));
    } catch (err) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw err;
    }
    return new EmbeddingPool(workers, reference);
  }

  async embed(images: Uint8Array, count: number): Promise<Float32Array> {
    if (count === 0) return new Float32Array(0);
    const per = images.length / count;
    const chunk = Math.ceil(count / this.workers.length);
    const parts = await Promise.all(this.workers.map((w, i) => {
      const start = i * chunk;
      const n = Math.max(0, Math.min(chunk, count - start));
      if (n === 0) return Promise.resolve(new Float32Array(0));
      const id = this.nextId++;
      const slice = images.slice(start * per, (start + n) * per);
      return new Promise<Float32Array>((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        w.postMessage({ id, images: slice, count: n } satisfies WorkerRequest, [slice.buffer as ArrayBuffer]);
      });
    }));
    const out = new Float32Array(count * this.dim);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  dispose(): void {
    void this.close();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

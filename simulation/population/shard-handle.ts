import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { entryPoint, startWorker } from '../../shared/entry-points.js';
import { PrototypeTable } from '../../shared/learning/prototype-table.js';
import { ClientShard, type ShardConfig } from './client-shard.js';
import { packFrames, transferables, type FrameBatch } from './frame-batch.js';

/** A shard of virtual clients, in this thread or in a worker thread. */
export interface ShardHandle {
  readonly first: number;
  readonly size: number;
  /** `codebookOf[k]` 0: client k first takes the pq codebook frame `codebook`. */
  learn(clients: Int32Array, missions: FrameBatch, codebookOf?: Uint8Array, codebook?: Uint8Array): Promise<FrameBatch>;
  deliver(clients: Int32Array, acks: FrameBatch, tableOf: Int32Array, tables: FrameBatch): Promise<void>;
  held(client: number): Promise<PrototypeTable>;
  close(): Promise<void>;
}

export type ShardRequest =
  | { id: number; kind: 'learn'; clients: Int32Array; missions: FrameBatch; codebookOf?: Uint8Array | undefined; codebook?: Uint8Array | undefined }
  | { id: number; kind: 'deliver'; clients: Int32Array; acks: FrameBatch; tableOf: Int32Array; tables: FrameBatch }
  | { id: number; kind: 'held'; client: number };

export type ShardReply =
  | { id: number; ok: true; updates?: FrameBatch; table?: SerializedTable }
  | { id: number; ok: false; error: string };

export interface SerializedTable {
  dim: number;
  classIds: number[];
  counts: number[];
  sums: Float64Array;
}

export function serializeTable(t: PrototypeTable): SerializedTable {
  const classIds = t.classIds();
  const sums = new Float64Array(classIds.length * t.dim);
  classIds.forEach((id, i) => sums.set(t.get(id)!.sum, i * t.dim));
  return { dim: t.dim, classIds, counts: classIds.map((id) => t.get(id)!.count), sums };
}

export function deserializeTable(s: SerializedTable): PrototypeTable {
  const t = new PrototypeTable(s.dim);
  s.classIds.forEach((id, i) => t.addSum(id, s.counts[i]!, s.sums.subarray(i * s.dim, (i + 1) * s.dim)));
  return t;
}

/** The shard in this thread: no copies, no parallelism (tests, small populations). */
export class InThreadShard implements ShardHandle {
  private readonly shard: ClientShard;

  constructor(config: ShardConfig) {
    this.shard = new ClientShard(config);
  }

  get first(): number {
    return this.shard.config.first;
  }

  get size(): number {
    return this.shard.config.size;
  }

  async learn(clients: Int32Array, missions: FrameBatch, codebookOf?: Uint8Array, codebook?: Uint8Array): Promise<FrameBatch> {
    return packFrames(this.shard.learn(clients, missions, codebookOf, codebook));
  }

  async deliver(clients: Int32Array, acks: FrameBatch, tableOf: Int32Array, tables: FrameBatch): Promise<void> {
    this.shard.deliver(clients, acks, tableOf, tables);
  }

  async held(client: number): Promise<PrototypeTable> {
    return this.shard.held(client);
  }

  async close(): Promise<void> {}
}

const workerEntry = entryPoint(import.meta.url, './shard-worker');

/**
 * A shard in a worker thread. Requests queue in the worker and are answered in order; frames
 * cross in one transferred buffer per batch, and the embedding bank is shared memory.
 */
export class WorkerShard implements ShardHandle {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: ShardReply) => void; reject: (e: Error) => void }>();
  private failure: Error | undefined;

  private constructor(private readonly worker: Worker, readonly first: number, readonly size: number) {
    worker.on('message', (reply: ShardReply) => {
      const p = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      p?.resolve(reply);
    });
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', (code) => this.fail(new Error(`population worker exited with code ${code}`)));
  }

  /** Starts a worker; the config's bank and labels must live in SharedArrayBuffers. */
  static start(config: ShardConfig): WorkerShard {
    if (!(config.bank.buffer instanceof SharedArrayBuffer) || !(config.labels.buffer instanceof SharedArrayBuffer)) {
      throw new Error('a worker shard needs its embedding bank and labels in shared memory');
    }
    const worker = startWorker(workerEntry, config);
    return new WorkerShard(worker, config.first, config.size);
  }

  async learn(clients: Int32Array, missions: FrameBatch, codebookOf?: Uint8Array, codebook?: Uint8Array): Promise<FrameBatch> {
    const reply = await this.request({ id: 0, kind: 'learn', clients, missions, codebookOf, codebook }, transferables(missions));
    return reply.updates!;
  }

  async deliver(clients: Int32Array, acks: FrameBatch, tableOf: Int32Array, tables: FrameBatch): Promise<void> {
    // The table batch goes to every worker, so it is copied rather than transferred.
    await this.request({ id: 0, kind: 'deliver', clients, acks, tableOf, tables }, transferables(acks));
  }

  async held(client: number): Promise<PrototypeTable> {
    return deserializeTable((await this.request({ id: 0, kind: 'held', client }, [])).table!);
  }

  async close(): Promise<void> {
    this.failure ??= new Error('closed');
    await this.worker.terminate();
  }

  private request(request: ShardRequest, transfer: ArrayBuffer[]): Promise<ShardReply & { ok: true }> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        resolve: (r) => (r.ok ? resolve(r) : reject(new Error(r.error))),
        reject,
      });
      this.worker.postMessage({ ...request, id }, transfer);
    });
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

/** Worker threads to use by default: one per core, minus the coordinator's. */
export function defaultWorkerCount(): number {
  return Math.max(1, availableParallelism() - 1);
}

import type { PrototypeTable } from '../learning/prototype-table.js';
import type { CodecSpec } from '../protocol/codecs/codec-spec.js';
import type { HeadTrainingOptions, StrategyName } from '../protocol/messages.js';

/**
 * A strategy: what a client sends after a mission, how the coordinator merges it, and which
 * classifier evaluates a table. One file per strategy, one line in the registry; nothing else
 * compares strategy names.
 */
export interface Strategy {
  readonly name: StrategyName;
  /** Row width of the tables it exchanges: the embedding dim, or one wider for a linear head. */
  tableDim(embeddingDim: number): number;
  /** How the coordinator merges: adding statistics, or averaging each round's rows (FedAvg). */
  readonly merge: 'sum' | 'round-average';
  /** Who learns the federation's table: the clients' updates, the coordinator from their pooled data, or nobody. */
  readonly learner: 'clients' | 'coordinator' | 'nobody';
  /** What an update holds one entry of: each class, or each example (which bounds the size of its messages). */
  readonly updateEntries: 'classes' | 'examples';
  /** Whether a client keeps each mission's embeddings until its update. */
  readonly keepsRows: boolean;
  /** Why it needs a barrier between missions (no asynchronous merging), or undefined when it does not. */
  readonly syncOnly?: string;
  /** Whether a population of clients in worker shards can run it. */
  readonly population: boolean;
  /** Whose accuracy tells how it does: the global table's, or (when nothing is merged) the clients' own. */
  readonly judgedBy: 'global table' | 'clients';
  /** Client, after learning a mission: local training; its result is the client's view until the next table. */
  train?(c: TrainingContext): PrototypeTable;
  /** Client: the class block of its update. */
  encodeUpdate(c: UpdateContext): Uint8Array;
  /** Coordinator: what is wrong with an update's classes, given the work assigned (undefined when nothing is). */
  checkUpdate(classes: UpdateClasses, work: AssignedWork): string | undefined;
  /** The table a client evaluates: what it holds and, unless it trained, its own statistics not in it yet. */
  view(c: ViewContext): PrototypeTable;
  /** How a table classifies embeddings (class ids, one per query row). */
  classify(table: PrototypeTable, queries: Float32Array, rows: number, dim: number): Promise<Int32Array>;
}

/** What a client has when it builds its update. */
export interface UpdateContext {
  /** The statistics of the examples learned since its last update (the delta). */
  delta: PrototypeTable;
  /** The embeddings learned since the last update, by class (kept when the strategy keepsRows). */
  rows: readonly { classId: number; embeddings: Float32Array }[];
  /** The global table the client holds. */
  held: PrototypeTable;
  /** What `train` returned this mission. */
  trained: PrototypeTable | undefined;
  uplink: CodecSpec;
  /** With a `delta+` uplink, the prototype the client holds for a class (the change is taken against it); undefined otherwise. */
  reference(classId: number): Float64Array | undefined;
}

/** What a client trains on after a mission. */
export interface TrainingContext {
  clientId: string;
  mission: number;
  held: PrototypeTable;
  rows: readonly { classId: number; embeddings: Float32Array }[];
  /** The classes known so far (the mission's evaluation classes). */
  classIds: readonly number[];
  dim: number;
  options: HeadTrainingOptions;
}

export interface ViewContext {
  held: PrototypeTable;
  /** The client's own statistics that the held table does not contain yet. */
  own(): PrototypeTable;
  trained: PrototypeTable | undefined;
}

/** The classes of a received update, as its class block gives them. */
export interface UpdateClasses {
  classIds: readonly number[];
  counts: readonly number[];
  /** One entry per example rather than one per class (class block flag 0x02). */
  rows: boolean;
}

/** The work a client was assigned in one mission: what its update must account for. */
export interface AssignedWork {
  mission: number;
  /** Examples assigned, by class id. */
  counts: ReadonlyMap<number, number>;
  /** All examples assigned. */
  total: number;
  /** The classes known in the mission (its evaluation classes). */
  known: ReadonlySet<number>;
}

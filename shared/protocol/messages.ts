import { classBlockPayloadBytes, type ClassBlock } from './class-block.js';

export type { ClassBlock } from './class-block.js';

/**
 * The protofed wire protocol, version 2. See docs/PROTOCOL.md.
 *
 * Every message is one msgpack map (encoded by shared/protocol/wire-format.ts) carried as the single
 * binary argument of a socket.io event whose name is the message type, in one WebSocket frame
 * (shared/protocol/socket-parser.ts). Vectors and index lists travel as msgpack `bin` (little-endian),
 * never as lists of numbers; the classes of updates and tables travel as one columnar class
 * block (shared/protocol/class-block.ts).
 */
export const PROTOCOL_VERSION = 2;

/**
 * protofed: send the statistics of new data only (a delta); the coordinator's merge is exact.
 * fedrecon-reference: send the held global prototype blended with the new data, as the reference
 * code does (the flaw protofed fixes; kept to measure it). local-only: send nothing, no merging
 * (the lower bound). share-embeddings: send every embedding itself (exact, and costly).
 * centralized: the data is pooled at the coordinator, which learns it itself (the upper bound;
 * the raw images that pooling would move are counted as the clients' `raw-data` uplink).
 * fedavg-head: the gradient baseline: each client trains a linear head on frozen embeddings by
 * SGD, and the coordinator averages the heads (FedAvg); its table rows are weights then a bias.
 */
export const STRATEGIES = ['protofed', 'fedrecon-reference', 'local-only', 'share-embeddings', 'centralized', 'fedavg-head'] as const;
export type StrategyName = (typeof STRATEGIES)[number];

/** Upper bounds that every coordinator and client enforces on incoming messages. */
export const PROTOCOL_LIMITS = {
  maxMessageBytes: 64 * 1024 * 1024,
  /** The largest frame a connection may send before its hello (the hello included). */
  maxHelloBytes: 4096,
  maxClassesPerMessage: 100_000,
  maxDim: 65_536,
  maxClassId: 2 ** 31 - 1,
  maxCount: 2 ** 48,
  maxIdLength: 64,
} as const;

export interface HelloMessage {
  v: number;
  clientId: string;
  token: string;
  codecs: string[];
  dim: number;
  modelHash: string;
  /** The global table version this client already holds (0 for none). */
  tableVersion: number;
  /** The pq codebook it holds (codebookHash), or "" for none: a held codebook is not sent again. */
  codebook: string;
  /** The run this client has joined before (welcome.runId), or "" (or absent) for a client that is new. */
  runId?: string;
}

/**
 * New statistics since the client's last update: counts and means of the new examples only, in
 * the uplink codec negotiated at welcome. The sender is the client that said hello on this
 * connection. On the wire `classes` is an encoded class block; received, it is decoded.
 */
export interface UpdateMessage {
  v: number;
  seq: number;
  /** The global table version the client held when it made this update. */
  base: number;
  mission: number;
  classes: ClassBlock;
}

export type EvaluationPhase = 'before-merge' | 'after-merge';

/** Nearest-prototype results of one evaluation, per class (u32 little-endian arrays of equal length). */
export interface ReportMessage {
  v: number;
  clientId: string;
  mission: number;
  phase: EvaluationPhase;
  tableVersion: number;
  classIds: Uint8Array;
  correct: Uint8Array;
  total: Uint8Array;
  /** Embeddings this client process has computed so far, and read from the embedding cache. */
  embeddingsComputed: number;
  embeddingsCached: number;
}

export interface WelcomeMessage {
  v: number;
  clientId: string;
  /** The highest seq the coordinator has applied for this client; continue from the next one. */
  lastAppliedSeq: number;
  uplinkCodec: string;
  downlinkCodec: string;
  dim: number;
  /** How clients build updates: see STRATEGIES. */
  strategy: StrategyName;
  /** fedavg-head only: how each client trains its head in a mission. */
  headTraining?: HeadTrainingOptions;
  /** The run's id: say it in every later hello, so that a coordinator running another run refuses this client. */
  runId: string;
  /** A new id each time a coordinator process starts: a change tells a client that its coordinator restarted. */
  instance: string;
  /** The coordinator's global table version now. */
  tableVersion: number;
}

/** SGD settings of the fedavg-head baseline's local training. */
export interface HeadTrainingOptions {
  epochs: number;
  learningRate: number;
  batchSize: number;
}

/**
 * fedavg-head's local training unless the scenario says otherwise: of four settings tried on 20
 * glyph missions, the one with the best first-mission accuracy (none ended above 0.04).
 */
export const DEFAULT_HEAD_TRAINING: Readonly<HeadTrainingOptions> = Object.freeze({ epochs: 5, learningRate: 0.1, batchSize: 5 });

export interface RefusedMessage {
  v: number;
  reason: string;
}

/** A mission: the examples (indices into the train split) to learn, and the classes to evaluate on. */
export interface MissionMessage {
  v: number;
  mission: number;
  assignment: { classId: number; indices: Uint8Array }[];
  evalClasses: Uint8Array;
}

export interface AckMessage {
  v: number;
  seq: number;
  /** The global table version in which the update is contained. */
  version: number;
  duplicate: boolean;
}

/** The classes of the global table that changed since `fromVersion`, as of `version`. */
export interface TableMessage {
  v: number;
  version: number;
  fromVersion: number;
  codec: string;
  classes: ClassBlock;
  /** Class ids (u32 little-endian) that no longer exist, after an exact unlearning. */
  removed: Uint8Array;
}

export interface EvaluateMessage {
  v: number;
  mission: number;
  evalClasses: Uint8Array;
}

export type ErrorCode = 'malformed' | 'version' | 'invalid' | 'unexpected' | 'limit';

export interface ErrorMessage {
  v: number;
  code: ErrorCode;
  reason: string;
  seq?: number;
}

/** A pq codebook (shared/protocol/codecs/pq.ts format), sent after the welcome to a client that lacks it. */
export interface CodebookMessage {
  v: number;
  codebook: Uint8Array;
}

export interface ShutdownMessage {
  v: number;
  reason: string;
}

/**
 * The client leaves the run with its data: the coordinator unlearns everything it contributed
 * (exactly), takes nothing more from it, and answers `shutdown`.
 */
export interface LeaveMessage {
  v: number;
}

export interface ClientToCoordinator {
  hello: HelloMessage;
  update: UpdateMessage;
  report: ReportMessage;
  leave: LeaveMessage;
}

export interface CoordinatorToClient {
  welcome: WelcomeMessage;
  refused: RefusedMessage;
  mission: MissionMessage;
  ack: AckMessage;
  table: TableMessage;
  evaluate: EvaluateMessage;
  error: ErrorMessage;
  shutdown: ShutdownMessage;
  codebook: CodebookMessage;
}

export type ClientMessageType = keyof ClientToCoordinator;
export type CoordinatorMessageType = keyof CoordinatorToClient;

export const CLIENT_MESSAGE_TYPES: readonly ClientMessageType[] = ['hello', 'update', 'report', 'leave'];
export const COORDINATOR_MESSAGE_TYPES: readonly CoordinatorMessageType[] = [
  'welcome', 'refused', 'mission', 'ack', 'table', 'evaluate', 'error', 'shutdown', 'codebook',
];

/**
 * Traffic that exists only to run and measure a simulation, counted apart from the learning
 * traffic, which is what a real deployment would send (hello and welcome, updates, acks, tables,
 * codebooks, a mission signal): evaluation requests and reports, and `mission-control`, the part
 * of each mission message that tells a simulated client which samples to learn and which classes
 * to evaluate (a deployed client has its own data; its mission is a signal).
 */
export const SIMULATION_CONTROL_TYPES: ReadonlySet<string> = new Set(['evaluate', 'report', 'mission-control']);

/** True for the messages of federated learning itself: what a deployment would send. */
export function isLearningTraffic(type: string): boolean {
  return !SIMULATION_CONTROL_TYPES.has(type);
}

/** socket.io event maps: every event carries one encoded message. */
export type SocketEvents<M> = { [K in keyof M]: (frame: Uint8Array) => void };

/** Packs integers as little-endian u32 bytes (the wire form of index and class lists). */
export function packU32(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setUint32(i * 4, values[i]!, true);
  return out;
}

/** Reads little-endian u32 bytes; the length must be a multiple of 4 (checked by validation). */
export function unpackU32(bytes: Uint8Array): Uint32Array {
  const out = new Uint32Array(bytes.length >>> 2);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getUint32(i * 4, true);
  return out;
}

/** Codec payload bytes of a message (decoded or as sent): the encoded vectors, or the codebook, it carries. */
export function payloadBytes(message: object): number {
  const { classes, codebook } = message as { classes?: ClassBlock | Uint8Array; codebook?: Uint8Array };
  if (codebook instanceof Uint8Array) return codebook.byteLength;
  if (classes === undefined) return 0;
  return classes instanceof Uint8Array ? classBlockPayloadBytes(classes) : classes.payloadBytes;
}

/** What a sender hands over: a message whose class block is already encoded. */
export type Outgoing<M> = M extends { classes: ClassBlock } ? Omit<M, 'v' | 'classes'> & { classes: Uint8Array } : Omit<M, 'v'>;

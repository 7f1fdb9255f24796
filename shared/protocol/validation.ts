import { ClassBlockError, ClassBlockLimitError, decodeClassBlock, type ClassBlock } from './class-block.js';
import {
  PROTOCOL_LIMITS, PROTOCOL_VERSION, STRATEGIES,
  type ClientToCoordinator, type CoordinatorToClient, type ErrorCode,
} from './messages.js';

/** An incoming message that breaks the protocol. `code` tells the sender what kind of mistake it made. */
export class ProtocolError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

type Obj = Record<string, unknown>;

function fail(field: string, expected: string, got: unknown): never {
  throw new ProtocolError('invalid', `field "${field}": expected ${expected}, got ${show(got)}`);
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing (missing)';
  if (v instanceof Uint8Array) return `${v.byteLength} bytes of binary`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') return 'a map';
  return String(v);
}

function int(o: Obj, key: string, min: number, max: number = Number.MAX_SAFE_INTEGER, path = key): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(path, `an integer in ${min}..${max}`, v);
  }
  return v;
}

function str(o: Obj, key: string, maxLength: number, path = key): string {
  const v = o[key];
  if (typeof v !== 'string' || v.length > maxLength) fail(path, `a string of at most ${maxLength} characters`, v);
  return v;
}

function id(o: Obj, key: string): string {
  const v = str(o, key, PROTOCOL_LIMITS.maxIdLength);
  if (!/^[A-Za-z0-9_.-]+$/.test(v)) fail(key, 'a non-empty id of letters, digits, "_", "." or "-"', v);
  return v;
}

function bin(o: Obj, key: string, multipleOf = 1, path = key): Uint8Array {
  const v = o[key];
  if (!(v instanceof Uint8Array)) fail(path, 'binary (msgpack bin)', v);
  if (v.byteLength % multipleOf !== 0) fail(path, `a byte length that is a multiple of ${multipleOf}`, v);
  return v;
}

function oneOf<T extends string>(o: Obj, key: string, values: readonly T[]): T {
  const v = o[key];
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) fail(key, `one of ${values.join(', ')}`, v);
  return v as T;
}

function bool(o: Obj, key: string): boolean {
  const v = o[key];
  if (typeof v !== 'boolean') fail(key, 'a boolean', v);
  return v;
}

function list(o: Obj, key: string, maxLength: number): unknown[] {
  const v = o[key];
  if (!Array.isArray(v)) fail(key, 'an array', v);
  if (v.length > maxLength) throw new ProtocolError('limit', `field "${key}": ${v.length} entries exceed the limit of ${maxLength}`);
  return v;
}

function map(v: unknown, path: string): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) fail(path, 'a map', v);
  return v as Obj;
}

function checkVersion(o: Obj): number {
  const v = o.v;
  if (v !== PROTOCOL_VERSION) {
    throw new ProtocolError('version', `unsupported protocol version ${show(v)}: this peer speaks version ${PROTOCOL_VERSION}`);
  }
  return v;
}

const BLOCK_LIMITS = {
  maxClasses: PROTOCOL_LIMITS.maxClassesPerMessage,
  maxClassId: PROTOCOL_LIMITS.maxClassId,
  maxCount: PROTOCOL_LIMITS.maxCount,
  maxVectorBytes: PROTOCOL_LIMITS.maxMessageBytes,
};

function classBlock(o: Obj): ClassBlock {
  const bytes = bin(o, 'classes');
  try {
    return decodeClassBlock(bytes, BLOCK_LIMITS);
  } catch (err) {
    if (!(err instanceof ClassBlockError)) throw err;
    const code = err instanceof ClassBlockLimitError ? 'limit' : 'invalid';
    throw new ProtocolError(code, `field "classes": ${err.message}`);
  }
}

type Validators<M> = { [K in keyof M]: (o: Obj) => M[K] };

/**
 * Structural validation of messages a coordinator receives. Semantic checks that need state
 * (dims, codec, token, seq order) are the coordinator's.
 */
export const validateClientMessage: Validators<ClientToCoordinator> = {
  hello: (o) => ({
    v: checkVersion(o),
    clientId: id(o, 'clientId'),
    token: str(o, 'token', 4096),
    codecs: list(o, 'codecs', 64).map((c, i) => (typeof c === 'string' ? c : fail(`codecs[${i}]`, 'a string', c))),
    dim: int(o, 'dim', 1, PROTOCOL_LIMITS.maxDim),
    modelHash: str(o, 'modelHash', 256),
    tableVersion: int(o, 'tableVersion', 0),
    codebook: str(o, 'codebook', 64),
    ...(o.runId === undefined ? {} : { runId: str(o, 'runId', 64) }),
  }),
  update: (o) => ({
    v: checkVersion(o),
    seq: int(o, 'seq', 1),
    base: int(o, 'base', 0),
    mission: int(o, 'mission', 0),
    classes: classBlock(o),
  }),
  leave: (o) => ({ v: checkVersion(o) }),
  report: (o) => {
    const phase = o.phase;
    if (phase !== 'before-merge' && phase !== 'after-merge') fail('phase', '"before-merge" or "after-merge"', phase);
    const msg = {
      v: checkVersion(o),
      clientId: id(o, 'clientId'),
      mission: int(o, 'mission', 0),
      phase,
      tableVersion: int(o, 'tableVersion', 0),
      classIds: bin(o, 'classIds', 4),
      correct: bin(o, 'correct', 4),
      total: bin(o, 'total', 4),
      embeddingsComputed: int(o, 'embeddingsComputed', 0),
      embeddingsCached: int(o, 'embeddingsCached', 0),
    } as const;
    if (msg.correct.byteLength !== msg.classIds.byteLength || msg.total.byteLength !== msg.classIds.byteLength) {
      fail('correct/total', `as many entries as classIds (${msg.classIds.byteLength / 4})`, `${msg.correct.byteLength / 4} and ${msg.total.byteLength / 4}`);
    }
    const correct = new DataView(msg.correct.buffer, msg.correct.byteOffset, msg.correct.byteLength);
    const total = new DataView(msg.total.buffer, msg.total.byteOffset, msg.total.byteLength);
    for (let i = 0; i < msg.correct.byteLength; i += 4) {
      if (correct.getUint32(i, true) > total.getUint32(i, true)) fail(`correct[${i / 4}]`, 'at most total', correct.getUint32(i, true));
    }
    return msg;
  },
};

/** Structural validation of messages a client receives. */
export const validateCoordinatorMessage: Validators<CoordinatorToClient> = {
  welcome: (o) => {
    const msg: CoordinatorToClient['welcome'] = {
      v: checkVersion(o),
      clientId: id(o, 'clientId'),
      lastAppliedSeq: int(o, 'lastAppliedSeq', 0),
      uplinkCodec: str(o, 'uplinkCodec', 32),
      strategy: oneOf(o, 'strategy', STRATEGIES),
      downlinkCodec: str(o, 'downlinkCodec', 32),
      dim: int(o, 'dim', 1, PROTOCOL_LIMITS.maxDim),
      runId: str(o, 'runId', 64),
      instance: str(o, 'instance', 64),
      tableVersion: int(o, 'tableVersion', 0),
    };
    if (o.headTraining !== undefined) {
      const t = map(o.headTraining, 'headTraining');
      const rate = t.learningRate;
      if (typeof rate !== 'number' || !(rate > 0) || !Number.isFinite(rate)) fail('headTraining.learningRate', 'a positive number', rate);
      msg.headTraining = {
        epochs: int(t, 'epochs', 1, 10_000, 'headTraining.epochs'),
        learningRate: rate,
        batchSize: int(t, 'batchSize', 1, 1_000_000, 'headTraining.batchSize'),
      };
    }
    return msg;
  },
  refused: (o) => ({ v: checkVersion(o), reason: str(o, 'reason', 4096) }),
  mission: (o) => ({
    v: checkVersion(o),
    mission: int(o, 'mission', 0),
    assignment: list(o, 'assignment', PROTOCOL_LIMITS.maxClassesPerMessage).map((raw, i) => {
      const a = map(raw, `assignment[${i}]`);
      return {
        classId: int(a, 'classId', 0, PROTOCOL_LIMITS.maxClassId, `assignment[${i}].classId`),
        indices: bin(a, 'indices', 4, `assignment[${i}].indices`),
      };
    }),
    evalClasses: bin(o, 'evalClasses', 4),
  }),
  ack: (o) => ({ v: checkVersion(o), seq: int(o, 'seq', 1), version: int(o, 'version', 0), duplicate: bool(o, 'duplicate') }),
  table: (o) => ({
    v: checkVersion(o),
    version: int(o, 'version', 0),
    fromVersion: int(o, 'fromVersion', 0),
    codec: str(o, 'codec', 32),
    classes: classBlock(o),
    removed: bin(o, 'removed', 4),
  }),
  evaluate: (o) => ({ v: checkVersion(o), mission: int(o, 'mission', 0), evalClasses: bin(o, 'evalClasses', 4) }),
  error: (o) => {
    const code = o.code;
    if (code !== 'malformed' && code !== 'version' && code !== 'invalid' && code !== 'unexpected' && code !== 'limit') {
      fail('code', 'one of malformed, version, invalid, unexpected, limit', code);
    }
    const msg: CoordinatorToClient['error'] = { v: checkVersion(o), code, reason: str(o, 'reason', 4096) };
    if (o.seq !== undefined) msg.seq = int(o, 'seq', 1);
    return msg;
  },
  shutdown: (o) => ({ v: checkVersion(o), reason: str(o, 'reason', 4096) }),
  codebook: (o) => ({ v: checkVersion(o), codebook: bin(o, 'codebook') }),
};

/**
 * Coordinator merge throughput: class updates per second through the whole intake path on one
 * core (msgpack decode, protocol validation, codec decode and checks, at-most-once dedup, float64
 * merge into the global table, contributions kept for unlearning). 64-d int8 updates of 10 classes
 * per message, from 1,000 clients, against a naive baseline measured in the same run: a msgpackr
 * decode of one map per class, a finiteness check and a float64 accumulation.
 */
import { Packr } from 'msgpackr';
import { FederationState } from '../coordinator/federation/federation-state.js';
import { decodeUpdate } from '../coordinator/federation/update-intake.js';
import { encodeClassBlock } from '../shared/protocol/class-block.js';
import { getCodec } from '../shared/protocol/codecs/index.js';
import { PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import { validateClientMessage } from '../shared/protocol/validation.js';
import { SeededRng } from '../shared/learning/rng.js';
import { decodeMessage, encodeMessage } from '../shared/protocol/wire-format.js';

export interface MergeThroughput {
  mergesPerSecond: number;
  naiveBaselinePerSecond: number;
  ratioToBaseline: number;
  update: { dim: number; codec: string; classesPerMessage: number; clients: number; messages: number };
}

/** The merge bench's load: 64-d int8 updates of 10 classes, from 1,000 clients, as msgpack frames. */
export function mergeBenchLoad(messages = 50_000): { frames: Uint8Array[]; senders: string[]; dim: number; classesPerMessage: number; clients: number } {
  const DIM = 64;
  const CLASSES_PER_MESSAGE = 10;
  const CLIENTS = 1000;
  const codec = getCodec('int8');
  const rng = new SeededRng(1);
  const frames: Uint8Array[] = [];
  /** The client each frame comes from (a connection's client id, known since its hello). */
  const senders: string[] = [];
  const seqs = new Map<number, number>();
  for (let m = 0; m < messages; m++) {
    const client = rng.int(CLIENTS);
    const seq = (seqs.get(client) ?? 0) + 1;
    seqs.set(client, seq);
    const classIds = rng.sample(1000, CLASSES_PER_MESSAGE).sort((a, b) => a - b);
    const vectors = new Uint8Array(CLASSES_PER_MESSAGE * codec.encodedLength(DIM));
    classIds.forEach((_, i) => vectors.set(codec.encode(Float64Array.from({ length: DIM }, () => rng.next() * 4)), i * codec.encodedLength(DIM)));
    senders.push(`c${client}`);
    frames.push(encodeMessage({
      v: PROTOCOL_VERSION, seq, base: 0, mission: 0,
      classes: encodeClassBlock(classIds, classIds.map(() => 1 + rng.int(30)), vectors),
    }));
  }
  return { frames, senders, dim: DIM, classesPerMessage: CLASSES_PER_MESSAGE, clients: CLIENTS };
}

/** Measures the coordinator's intake and the naive baseline in this process (best of 5 runs each). */
export function measureMergeThroughput(): MergeThroughput {
  const MESSAGES = 50_000;
  const { frames, senders, dim: DIM, classesPerMessage: CLASSES_PER_MESSAGE, clients: CLIENTS } = mergeBenchLoad(MESSAGES);
  const codec = getCodec('int8');

  function protofedIntake(): number {
    const state = new FederationState(DIM);
    const scratch = { means: new Float64Array(0) };
    const started = performance.now();
    for (let i = 0; i < frames.length; i++) {
      const update = validateClientMessage.update(decodeMessage(frames[i]));
      state.applyUpdate(senders[i]!, update.seq, decodeUpdate(update, { codec, dim: DIM }, scratch));
    }
    return (MESSAGES * CLASSES_PER_MESSAGE) / ((performance.now() - started) / 1000);
  }

  // The baseline the issue describes: one msgpack map per class, a finiteness check, a float64 sum.
  const packr = new Packr({ useRecords: false });
  const perClass = frames.slice(0, 20_000).flatMap((f) => {
    const { classIds, counts, vectors } = validateClientMessage.update(decodeMessage(f)).classes;
    const stride = codec.encodedLength(DIM);
    return Array.from(classIds, (classId, i) => packr.pack({
      classId, count: counts[i], vector: Float32Array.from(codec.decode(vectors.subarray(i * stride, (i + 1) * stride), DIM)),
    }));
  });
  function naiveLoop(): number {
    const sums = new Map<number, Float64Array>();
    const started = performance.now();
    for (const bytes of perClass) {
      const c = packr.unpack(bytes) as { classId: number; count: number; vector: Float32Array };
      for (let i = 0; i < DIM; i++) if (!Number.isFinite(c.vector[i]!)) throw new Error('not finite');
      let s = sums.get(c.classId);
      if (!s) sums.set(c.classId, (s = new Float64Array(DIM)));
      for (let i = 0; i < DIM; i++) s[i]! += c.count * c.vector[i]!;
    }
    return perClass.length / ((performance.now() - started) / 1000);
  }

  const best = (f: () => number, runs = 5): number => Math.max(...Array.from({ length: runs }, f));
  const ours = best(protofedIntake);
  const naive = best(naiveLoop);
  return {
    mergesPerSecond: Math.round(ours),
    naiveBaselinePerSecond: Math.round(naive),
    ratioToBaseline: Number((ours / naive).toFixed(2)),
    update: { dim: DIM, codec: 'int8', classesPerMessage: CLASSES_PER_MESSAGE, clients: CLIENTS, messages: MESSAGES },
  };
}

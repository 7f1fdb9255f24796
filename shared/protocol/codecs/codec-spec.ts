import { createHash } from 'node:crypto';
import { CODEC_NAMES, CodecError, createPqCodec, getCodec, type PqCodebook, type VectorCodec } from './index.js';

/** Lossless deflate of an update's or table's vectors, on top of any codec. */
export const DEFLATE_SUFFIX = '+deflate';
/** Uplink only: encode each class's change against the global prototype the client holds. */
export const DELTA_PREFIX = 'delta+';

/** What a client offers in its hello: every codec, deflate, delta and pq (with a codebook it is sent). */
export const CODEC_CAPABILITIES: readonly string[] = [...CODEC_NAMES, 'deflate', 'delta', 'pq'];

/** `pq-<subspaces>x<centroids>`, e.g. pq-32x256: product quantisation with a trained codebook. */
const PQ_NAME = /^pq-(\d+)x(\d+)$/;

export interface CodecSpec {
  /** The spec as written, e.g. "delta+int8+deflate". */
  spec: string;
  codec: VectorCodec;
  deflate: boolean;
  /**
   * Each vector is the class mean minus the prototype the sender holds for that class in the
   * global table of the update's `base` version (zero for a class it does not hold).
   */
  delta: boolean;
  /** Product quantisation: the codebook's shape; `codec` works once bindCodebook gave it the codebook. */
  pq?: { subspaces: number; centroids: number } | undefined;
}

/**
 * Reads a codec spec: a codec name, optionally preceded by "delta+" and followed by "+deflate".
 * Throws CodecError naming the known codecs for anything else.
 *
 * @example
 * parseCodecSpec('delta+int4-b32+deflate'); // { codec: int4-b32, deflate: true, delta: true }
 */
export function parseCodecSpec(spec: string): CodecSpec {
  const delta = spec.startsWith(DELTA_PREFIX);
  const rest = delta ? spec.slice(DELTA_PREFIX.length) : spec;
  const deflate = rest.endsWith(DEFLATE_SUFFIX);
  const name = deflate ? rest.slice(0, -DEFLATE_SUFFIX.length) : rest;
  const pq = PQ_NAME.exec(name);
  if (pq) {
    const subspaces = Number(pq[1]);
    const centroids = Number(pq[2]);
    if (subspaces < 1 || centroids < 1 || centroids > 256) throw new CodecError(`${name}: pq needs at least 1 subspace and 1 to 256 centroids`);
    return { spec, codec: unboundPq(name), deflate, delta, pq: { subspaces, centroids } };
  }
  return { spec, codec: getCodec(name), deflate, delta };
}

/** The downlink counterpart of a codec spec: the same, without `delta+` (which is for the uplink). */
export function downlinkOf(spec: string): string {
  return spec.startsWith(DELTA_PREFIX) ? spec.slice(DELTA_PREFIX.length) : spec;
}

/** A pq spec with its codebook: the real codec. Throws CodecError when the shapes differ. */
export function bindCodebook(spec: CodecSpec, codebook: PqCodebook): CodecSpec {
  if (!spec.pq) return spec;
  if (codebook.subspaces !== spec.pq.subspaces || codebook.centroids !== spec.pq.centroids) {
    throw new CodecError(`${spec.spec} needs a ${spec.pq.subspaces}×${spec.pq.centroids} codebook, got ${codebook.subspaces}×${codebook.centroids}`);
  }
  return { ...spec, codec: createPqCodec(codebook) };
}

/** Identifies a codebook in a hello (the client already holds it: it is not sent again). */
export function codebookHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 32);
}

/** Stands in for a pq codec until its codebook arrives: every use says so. */
function unboundPq(name: string): VectorCodec {
  const fail = (): never => {
    throw new CodecError(`${name}: the codebook has not arrived yet`);
  };
  return { name: 'pq', encodedLength: fail, encode: fail, decode: fail, errorBound: fail };
}

/** Whether a string is a valid codec spec. */
export function isCodecSpec(spec: string): boolean {
  try {
    parseCodecSpec(spec);
    return true;
  } catch (err) {
    if (err instanceof CodecError) return false;
    throw err;
  }
}

/** The capabilities a peer must offer to use this spec. */
export function capabilitiesNeeded(spec: CodecSpec): string[] {
  return [spec.codec.name, ...(spec.deflate ? ['deflate'] : []), ...(spec.delta ? ['delta'] : [])];
}

/** The codebook shape a run needs (its uplink and downlink pq specs must agree), or undefined. */
export function pqShape(uplink: CodecSpec, downlink: CodecSpec): { subspaces: number; centroids: number } | undefined {
  const shapes = [uplink.pq, downlink.pq].filter((s) => s !== undefined);
  if (shapes.length === 2 && (shapes[0]!.subspaces !== shapes[1]!.subspaces || shapes[0]!.centroids !== shapes[1]!.centroids)) {
    throw new CodecError(`uplink ${uplink.spec} and downlink ${downlink.spec} would need two codebooks; use one pq shape`);
  }
  return shapes[0];
}

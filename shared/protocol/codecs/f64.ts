import {
  CodecError,
  HOST_IS_LITTLE_ENDIAN,
  assertByteLength,
  assertDim,
  nonFiniteInputError,
  type VectorCodec,
} from './vector-codec.js';

const BYTES_PER_ELEMENT = 8;

function encodedLength(dim: number): number {
  assertDim('f64', dim);
  return dim * BYTES_PER_ELEMENT;
}

function encode(vector: ArrayLike<number>): Uint8Array {
  const n = vector.length;
  const out = new Uint8Array(n * BYTES_PER_ELEMENT);
  if (HOST_IS_LITTLE_ENDIAN) {
    const view = new Float64Array(out.buffer, 0, n);
    for (let i = 0; i < n; i++) {
      const v = vector[i]!;
      if (!Number.isFinite(v)) throw nonFiniteInputError('f64', i, v);
      view[i] = v;
    }
  } else {
    const dv = new DataView(out.buffer);
    for (let i = 0; i < n; i++) {
      const v = vector[i]!;
      if (!Number.isFinite(v)) throw nonFiniteInputError('f64', i, v);
      dv.setFloat64(i * BYTES_PER_ELEMENT, v, true);
    }
  }
  return out;
}

function decode(bytes: Uint8Array, dim: number): Float64Array {
  assertByteLength('f64', bytes, dim, encodedLength(dim));
  const out = new Float64Array(dim);
  if (HOST_IS_LITTLE_ENDIAN) {
    // A byte copy into the (aligned) output sidesteps the input's possibly unaligned byteOffset.
    new Uint8Array(out.buffer).set(bytes);
  } else {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < dim; i++) out[i] = dv.getFloat64(i * BYTES_PER_ELEMENT, true);
  }
  for (let i = 0; i < dim; i++) {
    if (!Number.isFinite(out[i]!)) {
      throw new CodecError(`f64: decoded element ${i} is ${String(out[i])}`);
    }
  }
  return out;
}

function errorBound(vector: ArrayLike<number>): number {
  for (let i = 0; i < vector.length; i++) {
    const v = vector[i]!;
    if (!Number.isFinite(v)) throw nonFiniteInputError('f64', i, v);
  }
  return 0;
}

/** Lossless IEEE-754 binary64 codec: 8 bytes per element, errorBound is always 0. */
export const f64Codec: VectorCodec = Object.freeze({
  name: 'f64',
  encodedLength,
  encode,
  decode,
  errorBound,
});

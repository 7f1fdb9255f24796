import { DataFileError, type ImageSet } from './labelled-dataset.js';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

export type IdxDtype = 'u8' | 'i8' | 'i16' | 'i32' | 'f32' | 'f64';

export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dtype: IdxDtype;
  dims: number[];
  data: IdxData;
}


interface DtypeInfo {
  dtype: IdxDtype;
  code: number;
  size: number;
}

const DTYPES: readonly DtypeInfo[] = [
  { dtype: 'u8', code: 0x08, size: 1 },
  { dtype: 'i8', code: 0x09, size: 1 },
  { dtype: 'i16', code: 0x0b, size: 2 },
  { dtype: 'i32', code: 0x0c, size: 4 },
  { dtype: 'f32', code: 0x0d, size: 4 },
  { dtype: 'f64', code: 0x0e, size: 8 },
];

function dtypeByCode(code: number): DtypeInfo | undefined {
  return DTYPES.find((d) => d.code === code);
}

function dtypeByName(dtype: IdxDtype): DtypeInfo {
  const info = DTYPES.find((d) => d.dtype === dtype);
  if (!info) throw new Error(`unknown IDX dtype '${dtype}'`);
  return info;
}

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Parses an IDX file's bytes (gzip-compressed or not). `fileLabel` names the file in errors. */
export function parseIdx(bytes: Uint8Array, fileLabel: string): IdxArray {
  let raw = bytes;
  if (isGzip(bytes)) {
    try {
      raw = gunzipSync(bytes);
    } catch (err) {
      throw new DataFileError(fileLabel, `corrupt gzip data (${(err as Error).message})`);
    }
  }

  if (raw.length < 4) {
    throw new DataFileError(fileLabel, `truncated IDX header: file has ${raw.length} bytes, need at least 4`);
  }
  const b0 = raw[0] ?? 0;
  const b1 = raw[1] ?? 0;
  const dtypeCode = raw[2] ?? 0;
  const ndims = raw[3] ?? 0;
  if (b0 !== 0 || b1 !== 0) {
    throw new DataFileError(
      fileLabel,
      `bad IDX magic number: first two bytes are ${hex(b0)} ${hex(b1)}, expected 0x00 0x00 (not an IDX file?)`,
    );
  }
  const info = dtypeByCode(dtypeCode);
  if (!info) {
    throw new DataFileError(
      fileLabel,
      `bad IDX magic number: unknown dtype byte ${hex(dtypeCode)} (expected one of ${DTYPES.map((d) => hex(d.code)).join(', ')})`,
    );
  }
  if (ndims === 0) {
    throw new DataFileError(fileLabel, 'invalid IDX header: number of dimensions is 0');
  }

  const headerLen = 4 + 4 * ndims;
  if (raw.length < headerLen) {
    throw new DataFileError(
      fileLabel,
      `truncated IDX header: ${ndims} dimensions need a ${headerLen}-byte header, file has ${raw.length} bytes`,
    );
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));

  // Products of uint32 dims can exceed 2^53; the comparison with the actual length still holds.
  const count = dims.reduce((a, b) => a * b, 1);
  const expectedBytes = count * info.size;
  const actualBytes = raw.length - headerLen;
  const shape = `[${dims.join(', ')}]`;
  if (actualBytes < expectedBytes) {
    throw new DataFileError(
      fileLabel,
      `truncated IDX data: dims ${shape} of ${info.dtype} need ${expectedBytes} data bytes, file has ${actualBytes}`,
    );
  }
  if (actualBytes > expectedBytes) {
    throw new DataFileError(
      fileLabel,
      `trailing garbage: ${actualBytes - expectedBytes} unexpected bytes after the ${expectedBytes} data bytes for dims ${shape} of ${info.dtype}`,
    );
  }

  return { dtype: info.dtype, dims, data: decodeData(view, headerLen, count, info.dtype) };
}

function decodeData(view: DataView, offset: number, count: number, dtype: IdxDtype): IdxData {
  const bytes = new Uint8Array(view.buffer, view.byteOffset + offset, count * dtypeByName(dtype).size);
  switch (dtype) {
    case 'u8':
      return bytes.slice();
    case 'i8':
      return new Int8Array(bytes.slice().buffer);
    case 'i16': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(offset + 2 * i, false);
      return out;
    }
    case 'i32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(offset + 4 * i, false);
      return out;
    }
    case 'f32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i, false);
      return out;
    }
    case 'f64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(offset + 8 * i, false);
      return out;
    }
  }
}

/** Serialises to uncompressed IDX bytes (big-endian), the inverse of `parseIdx`. */
export function encodeIdx(arr: IdxArray): Uint8Array {
  const info = dtypeByName(arr.dtype);
  if (arr.dims.length === 0 || arr.dims.length > 255) {
    throw new Error(`encodeIdx: IDX supports 1..255 dimensions, got ${arr.dims.length}`);
  }
  const count = arr.dims.reduce((a, b) => a * b, 1);
  if (arr.data.length !== count) {
    throw new Error(`encodeIdx: dims [${arr.dims.join(', ')}] need ${count} elements, data has ${arr.data.length}`);
  }
  const headerLen = 4 + 4 * arr.dims.length;
  const out = new Uint8Array(headerLen + count * info.size);
  const view = new DataView(out.buffer);
  out[2] = info.code;
  out[3] = arr.dims.length;
  arr.dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const data = arr.data;
  for (let i = 0; i < count; i++) {
    const v = data[i] ?? 0;
    const at = headerLen + i * info.size;
    switch (arr.dtype) {
      case 'u8':
        view.setUint8(at, v);
        break;
      case 'i8':
        view.setInt8(at, v);
        break;
      case 'i16':
        view.setInt16(at, v, false);
        break;
      case 'i32':
        view.setInt32(at, v, false);
        break;
      case 'f32':
        view.setFloat32(at, v, false);
        break;
      case 'f64':
        view.setFloat64(at, v, false);
        break;
    }
  }
  return out;
}

export function readIdxFile(path: string): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new DataFileError(path, `cannot read file (${(err as Error).message})`);
  }
  return parseIdx(bytes, path);
}

/** Loads a pair of IDX files: images `[count, rows, cols]` ubyte and labels `[count]` ubyte. */
export function loadIdxImageSet(imagesPath: string, labelsPath: string): ImageSet {
  const images = readIdxFile(imagesPath);
  if (images.dtype !== 'u8' || images.dims.length !== 3) {
    throw new DataFileError(
      imagesPath,
      `not an IDX image file: expected 3-dimensional u8 data [count, rows, cols], got ${images.dims.length}-dimensional ${images.dtype} [${images.dims.join(', ')}]`,
    );
  }
  const labels = readIdxFile(labelsPath);
  if (labels.dtype !== 'u8' || labels.dims.length !== 1) {
    throw new DataFileError(
      labelsPath,
      `not an IDX label file: expected 1-dimensional u8 data [count], got ${labels.dims.length}-dimensional ${labels.dtype} [${labels.dims.join(', ')}]`,
    );
  }
  const [count = 0, rows = 0, cols = 0] = images.dims;
  const labelCount = labels.dims[0] ?? 0;
  if (labelCount !== count) {
    throw new DataFileError(
      labelsPath,
      `label count ${labelCount} does not match image count ${count} in ${imagesPath}`,
    );
  }
  return {
    images: images.data as Uint8Array,
    labels: labels.data as Uint8Array,
    count,
    rows,
    cols,
    channels: 1,
  };
}

import { DataFileError, labelArrayFor, type ImageSet, type LabelledDataset } from './labelled-dataset.js';

/**
 * A loaded dataset as one binary: what a coordinator sends a browser client that asks for the
 * run's data for a demo (a browser has no dataset on disk). Little-endian:
 *
 * `"PFDP"` · u32 version (1) · u32 header length · header (UTF-8 JSON: name, kind, classNames and,
 * for train and test, count, rows, cols, channels) · train images · test images · train labels
 * (u32 each) · test labels (u32 each). Images are u8, row-major, channels last, in the dataset's
 * order, so a sample index means the same image on both sides.
 *
 * @example
 * const bytes = encodeDatasetPack(loadDataset({ name: 'fashion-mnist', dir: 'embedded' }));
 * const same = decodeDatasetPack(bytes, 'the coordinator'); // datasetIdentity(same) is the coordinator's
 */
export const DATASET_PACK_MAGIC = 'PFDP';
export const DATASET_PACK_VERSION = 1;

interface PackHeader {
  name: string;
  kind: string;
  classNames: string[];
  train: SplitShape;
  test: SplitShape;
}

interface SplitShape {
  count: number;
  rows: number;
  cols: number;
  channels: number;
}

const shapeOf = (s: ImageSet): SplitShape => ({ count: s.count, rows: s.rows, cols: s.cols, channels: s.channels });
const imageBytes = (s: SplitShape): number => s.count * s.rows * s.cols * s.channels;

export function encodeDatasetPack(data: LabelledDataset): Uint8Array {
  const header = new TextEncoder().encode(JSON.stringify({
    name: data.name, kind: data.kind, classNames: data.classNames, train: shapeOf(data.train), test: shapeOf(data.test),
  } satisfies PackHeader));
  const total = 12 + header.length + imageBytes(data.train) + imageBytes(data.test) + 4 * (data.train.count + data.test.count);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(DATASET_PACK_MAGIC), 0);
  view.setUint32(4, DATASET_PACK_VERSION, true);
  view.setUint32(8, header.length, true);
  out.set(header, 12);
  let at = 12 + header.length;
  for (const s of [data.train, data.test]) {
    out.set(s.images.subarray(0, imageBytes(s)), at);
    at += imageBytes(s);
  }
  for (const s of [data.train, data.test]) {
    for (let i = 0; i < s.count; i++, at += 4) view.setUint32(at, s.labels[i]!, true);
  }
  return out;
}

/** Reads a dataset pack; anything malformed is a DataFileError naming `source` and what is wrong. */
export function decodeDatasetPack(bytes: Uint8Array, source: string): LabelledDataset {
  const fail = (reason: string): never => {
    throw new DataFileError(source, `not a protofed dataset pack: ${reason}`);
  };
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 4)) !== DATASET_PACK_MAGIC) fail('it does not start with "PFDP"');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(4, true);
  if (version !== DATASET_PACK_VERSION) fail(`version ${version}, this client reads version ${DATASET_PACK_VERSION}`);
  const headerLength = view.getUint32(8, true);
  if (12 + headerLength > bytes.length) fail('its header is cut short');
  let header: PackHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerLength))) as PackHeader;
  } catch (err) {
    return fail(`its header is not JSON (${(err as Error).message})`);
  }
  const isShape = (s: SplitShape | undefined): boolean => !!s && [s.count, s.rows, s.cols, s.channels].every((v) => Number.isInteger(v) && v >= 0);
  if (typeof header.name !== 'string' || !Array.isArray(header.classNames) || !isShape(header.train) || !isShape(header.test)) fail('its header lacks a name, class names or split shapes');
  const expected = 12 + headerLength + imageBytes(header.train) + imageBytes(header.test) + 4 * (header.train.count + header.test.count);
  if (bytes.length !== expected) fail(`it holds ${bytes.length} bytes, its header says ${expected}`);
  let at = 12 + headerLength;
  let labelAt = at + imageBytes(header.train) + imageBytes(header.test);
  const split = (shape: SplitShape): ImageSet => {
    const images = bytes.slice(at, at + imageBytes(shape));
    at += imageBytes(shape);
    const labels = labelArrayFor(header.classNames.length, shape.count);
    for (let i = 0; i < shape.count; i++, labelAt += 4) {
      const label = view.getUint32(labelAt, true);
      if (label >= header.classNames.length) fail(`label ${label} of image ${i} is not one of its ${header.classNames.length} classes`);
      labels[i] = label;
    }
    return { images, labels, ...shape };
  };
  const train = split(header.train);
  const test = split(header.test);
  return { name: header.name, source, kind: header.kind, classNames: header.classNames, train, test };
}

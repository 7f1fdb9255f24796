import { createHash } from 'node:crypto';
import type { ImageSet, LabelledDataset } from './labelled-dataset.js';

/** Which copy of a dataset is loaded: its split sizes and a hash of its content. */
export interface DatasetIdentity {
  train: number;
  test: number;
  /** SHA-256 (hex) of both splits as loaded, see datasetIdentity. */
  sha256: string;
}

/**
 * The identity of a loaded dataset, so that a coordinator and a client can tell whether they hold
 * the same copy (the full Fashion-MNIST and the shipped subset share a name). The hash covers, for
 * the train split and then the test split: count, rows, cols and channels (u32 LE), the image bytes
 * (row-major, channels last), then each label as a u32 LE.
 *
 * @example
 * datasetIdentity(loadDataset({ name: 'fashion-mnist', dir: 'embedded' })); // { train: 5000, test: 1000, sha256: '…' }
 */
export function datasetIdentity(data: LabelledDataset): DatasetIdentity {
  const hash = createHash('sha256');
  for (const split of [data.train, data.test]) addSplit(hash, split);
  return { train: data.train.count, test: data.test.count, sha256: hash.digest('hex') };
}

function addSplit(hash: ReturnType<typeof createHash>, split: ImageSet): void {
  // Plain typed arrays, no Buffer: the browser client computes this too.
  const header = new DataView(new ArrayBuffer(16));
  [split.count, split.rows, split.cols, split.channels].forEach((v, i) => header.setUint32(i * 4, v, true));
  hash.update(new Uint8Array(header.buffer));
  hash.update(split.images.subarray(0, split.count * split.rows * split.cols * split.channels));
  const labels = new DataView(new ArrayBuffer(split.count * 4));
  for (let i = 0; i < split.count; i++) labels.setUint32(i * 4, split.labels[i]!, true);
  hash.update(new Uint8Array(labels.buffer));
}

/** Why two copies differ, in words a user can act on; undefined when they are the same. */
export function copyMismatch(name: string, coordinator: DatasetIdentity, here: DatasetIdentity): string | undefined {
  if (coordinator.sha256 === here.sha256) return undefined;
  const sizes = (d: DatasetIdentity): string => `${d.train.toLocaleString('en')} train / ${d.test.toLocaleString('en')} test images`;
  return `this host's ${name} is not the coordinator's copy: the coordinator has ${sizes(coordinator)} (sha256 ${coordinator.sha256.slice(0, 16)}…), ` +
    `this host ${sizes(here)} (sha256 ${here.sha256.slice(0, 16)}…); point --data at the same copy`;
}

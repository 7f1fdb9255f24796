/** Class labels of a set of images; wide enough for thousands of classes. */
export type LabelArray = Uint8Array | Uint16Array | Int32Array;

/** A label array wide enough for `classCount` classes. */
export function labelArrayFor(classCount: number, length: number): LabelArray {
  return classCount <= 65535 ? new Uint16Array(length) : new Int32Array(length);
}

/** Images of one shape, stored contiguously, with one label each. */
export interface ImageSet {
  /** Row-major pixels, channels last, `count * rows * cols * channels` bytes. */
  images: Uint8Array;
  labels: LabelArray;
  count: number;
  rows: number;
  cols: number;
  channels: number;
}

/**
 * A labelled dataset as protofed uses it: train and test images over one class index space.
 * Class id i is `classNames[i]`.
 */
export interface LabelledDataset {
  /** The dataset's family, e.g. 'fashion-mnist'. */
  name: string;
  /** Absolute file or folder the data was read from. */
  source: string;
  /** How it was found, e.g. 'full', 'embedded-subset', 'custom'. */
  kind: string;
  classNames: string[];
  train: ImageSet;
  test: ImageSet;
  /** Classes reserved for pretraining (Omniglot's background alphabets), when the dataset has such a split. */
  baseClasses?: number[];
  /** The group of each class (an alphabet, a coarse label), when the dataset has one. */
  classGroups?: string[];
}

/** A data file that cannot be used: the message names the file and the reason. */
export class DataFileError extends Error {
  readonly reason: string;

  constructor(
    public readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'DataFileError';
    this.reason = reason;
  }
}

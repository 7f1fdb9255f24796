/**
 * How a folder of images with one folder per class becomes a dataset, apart from reading files:
 * which names are images, the order of classes and files, and the train/test split. The Node
 * loader (image-folder.ts) and the browser client's picked folder share these rules.
 */

/** One image and its class, before decoding. */
export interface ImageFolderItem {
  file: string;
  classId: number;
}

const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'];

export function codeUnitCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function isImageName(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/**
 * How many of a class's `n` images go to train: `round(n * fraction)`, but at least one on each
 * side when the class has two or more images and `fraction` < 1.
 *
 * @example
 * trainCountFor(10, 0.8); // 8
 * trainCountFor(2, 0.8);  // 1
 */
export function trainCountFor(n: number, fraction: number): number {
  if (n <= 1) return n;
  const k = Math.round(n * fraction);
  if (fraction >= 1) return n;
  return Math.min(Math.max(k, 1), n - 1);
}

export function checkFraction(fraction: number): void {
  if (!(fraction > 0 && fraction <= 1)) {
    throw new RangeError(`image folder option trainFraction must be in (0, 1], got ${fraction}`);
  }
}

export function splitByFraction(filesByClass: string[][], fraction: number): { train: ImageFolderItem[]; test: ImageFolderItem[] } {
  const train: ImageFolderItem[] = [];
  const test: ImageFolderItem[] = [];
  filesByClass.forEach((files, classId) => {
    const k = trainCountFor(files.length, fraction);
    files.forEach((file, i) => (i < k ? train : test).push({ file, classId }));
  });
  return { train, test };
}

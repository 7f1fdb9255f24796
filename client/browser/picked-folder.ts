import { codeUnitCompare, isImageName, splitByFraction, type ImageFolderItem } from '../../shared/datasets/class-folders.js';
import { DataFileError, labelArrayFor, type ImageSet, type LabelledDataset } from '../../shared/datasets/labelled-dataset.js';
import { fromRgba, resizeArea } from '../../shared/datasets/pixel-ops.js';

/** A file the user picked, as the browser gives it (`<input type=file webkitdirectory>`). */
export interface PickedFile {
  /** `folder/class/image.png`. */
  readonly webkitRelativePath: string;
  readonly name: string;
}

export interface PickedFolderOptions {
  /** Images become size×size; the first image's size when absent. */
  size?: number | undefined;
  channels: 1 | 3;
  trainFraction?: number | undefined;
  /** Decodes one image to RGBA (createImageBitmap and a canvas in a browser). */
  decode(file: PickedFile): Promise<{ width: number; height: number; rgba: Uint8Array }>;
}

/**
 * A folder the user picked, read as the image-folder loader reads one on disk (one folder per
 * class; classes, files and the train/test split in the same order, the same resize): class ids
 * are the sorted folder names' positions. Like a Node client's data, it must be the run's copy,
 * since missions name images by index; the setup's hash tells.
 *
 * @example
 * const data = await readPickedFolder([...input.files], { channels: 1, size: 28, decode: decodeInCanvas });
 */
export async function readPickedFolder(files: readonly PickedFile[], o: PickedFolderOptions): Promise<LabelledDataset> {
  const root = files[0]?.webkitRelativePath.split('/')[0] ?? '';
  const byClass = new Map<string, PickedFile[]>();
  for (const f of files) {
    const parts = f.webkitRelativePath.split('/');
    if (parts.length !== 3 || !isImageName(parts[2]!)) continue;
    let list = byClass.get(parts[1]!);
    if (!list) byClass.set(parts[1]!, (list = []));
    list.push(f);
  }
  if (byClass.size === 0) {
    throw new DataFileError(root || '(the picked folder)', 'no class folders with PNG or JPEG images found: pick a folder holding one folder of images per class');
  }
  const classNames = [...byClass.keys()].sort(codeUnitCompare);
  const filesByClass = classNames.map((c) => byClass.get(c)!.map((f) => f.webkitRelativePath).sort(codeUnitCompare));
  const byPath = new Map(files.map((f) => [f.webkitRelativePath, f]));
  const { train, test } = splitByFraction(filesByClass, o.trainFraction ?? 0.8);
  const decodeOne = async (path: string): Promise<{ width: number; height: number; pixels: Uint8Array }> => {
    let image: { width: number; height: number; rgba: Uint8Array };
    try {
      image = await o.decode(byPath.get(path)!);
    } catch (err) {
      throw new DataFileError(path, `cannot decode this image (${(err as Error).message || String(err)}); the folder must hold PNG or JPEG images only`);
    }
    return { width: image.width, height: image.height, pixels: fromRgba(image.rgba, image.width, image.height, o.channels) };
  };
  const first = train[0] ?? test[0];
  const native = o.size === undefined && first ? await decodeOne(first.file) : undefined;
  const rows = o.size ?? native!.height;
  const cols = o.size ?? native!.width;
  const fill = async (items: ImageFolderItem[]): Promise<ImageSet> => {
    const per = rows * cols * o.channels;
    const images = new Uint8Array(items.length * per);
    const labels = labelArrayFor(classNames.length, items.length);
    for (const [i, { file, classId }] of items.entries()) {
      const img = await decodeOne(file);
      images.set(img.width === cols && img.height === rows ? img.pixels : resizeArea(img.pixels, img.width, img.height, o.channels, cols, rows), i * per);
      labels[i] = classId;
    }
    return { images, labels, count: items.length, rows, cols, channels: o.channels };
  };
  return { name: 'image-folder', source: root, kind: 'custom', classNames, train: await fill(train), test: await fill(test) };
}

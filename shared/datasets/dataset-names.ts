/** The datasets protofed knows by name (shared/datasets/dataset-registry.ts loads them). */
export const DATASET_NAMES = ['fashion-mnist', 'mnist', 'glyphs', 'omniglot', 'image-folder', 'cifar10', 'cifar100'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

import { z } from 'zod';
import { DATASET_NAMES } from '../datasets/dataset-names.js';

/**
 * The dataset and backbone parts of a scenario: a remote client's setup carries them too
 * (shared/protocol/run-setup.ts), so they load without the rest of the scenario code.
 */
export const positiveInt = z.number().int().min(1);

export const datasetSchema = z.strictObject({
  name: z.enum(DATASET_NAMES),
  /** A folder holding the dataset files; when absent, the usual places are searched ("embedded": the copy in the repo). */
  dir: z.string().min(1).optional(),
  /** Resize images to size×size (Omniglot layouts and image folders). */
  size: positiveInt.optional(),
  /** Greyscale (1) or RGB (3), for image folders. */
  channels: z.union([z.literal(1), z.literal(3)]).optional(),
  /** Train images per class in an Omniglot layout (default 15 of 20); the rest are test images. */
  trainPerClass: positiveInt.optional(),
  /** CIFAR-100 labels. */
  labels: z.enum(['fine', 'coarse']).optional(),
  /** Classes reserved for the coordinator and pretraining; the dataset's own base split (if any) when absent. */
  baseClasses: z.array(z.number().int().min(0)).optional(),
});

const convKernel = z.enum(['auto', 'off']).optional();

export const backboneSchema = z.discriminatedUnion('name', [
  z.strictObject({ name: z.literal('pixels') }),
  z.strictObject({
    name: z.literal('conv4'),
    /** Folder of the pretrained model (model.json + weights.bin), relative to the scenario file. */
    weights: z.string().min(1),
    batchSize: positiveInt.default(256),
    /** 'auto' (when absent): conv blocks the Winograd wasm kernel fits run in it on the wasm and cpu backends; 'off': tfjs's own convolutions. */
    kernel: convKernel,
  }),
  z.strictObject({
    name: z.literal('tfjs-model'),
    /** A tfjs LayersModel or GraphModel: a model.json path (relative to the scenario file), file:// or http(s) URL. */
    url: z.string().min(1),
    input: z.strictObject({ rows: positiveInt, cols: positiveInt, channels: z.union([z.literal(1), z.literal(3)]) }),
    normalization: z.strictObject({
      scale: z.number().positive().default(1 / 255),
      mean: z.array(z.number()).min(1).default([0]),
      std: z.array(z.number().positive()).min(1).default([1]),
    }).default({ scale: 1 / 255, mean: [0], std: [1] }),
    /** Layer (LayersModel) or node (GraphModel) whose output is the embedding; the model's output when absent. */
    output: z.string().min(1).optional(),
    batchSize: positiveInt.default(256),
    kernel: convKernel,
  }),
]);

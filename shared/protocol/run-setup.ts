import { z } from 'zod';
import { PROTOCOL_VERSION } from './messages.js';
import { backboneSchema, datasetSchema } from '../scenario/component-schemas.js';

/** Where a coordinator serves a remote client's setup, and its model files. */
export const SETUP_PATH = '/protofed/setup';
export const MODEL_PATH = '/protofed/model/';
/** Where a coordinator serves its dataset as one pack (shared/datasets/dataset-pack.ts) to a client that has none, e.g. a browser's demo. */
export const DATASET_PACK_PATH = '/protofed/dataset-pack';

const runSetupSchema = z.strictObject({
  protocolVersion: z.number().int(),
  dataset: datasetSchema,
  backbone: backboneSchema,
  backend: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']),
  testPerClass: z.number().int().min(1).optional(),
  uplinkCodec: z.string(),
  downlinkCodec: z.string(),
  /** Which copy of the dataset the coordinator loaded (shared/datasets/dataset-identity.ts): a client must hold the same. */
  datasetCopy: z.strictObject({ train: z.number().int().min(0), test: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  /** The coordinator's model hash: the one a client's hello must name. */
  modelHash: z.string().min(1),
});

/**
 * What a remote client needs before it can say hello: the dataset to load from its own disk (by
 * name and options; images never travel), the backbone, and the evaluation settings.
 */
export type RunSetup = z.infer<typeof runSetupSchema>;

/** Checks a setup received from a coordinator; a wrong one is an error that says what is wrong. */
export function parseRunSetup(raw: unknown, from: string): RunSetup {
  const result = runSetupSchema.safeParse(raw);
  if (!result.success) {
    const what = result.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`).join('; ');
    throw new Error(`the setup from ${from} is invalid: ${what}`);
  }
  if (result.data.protocolVersion !== PROTOCOL_VERSION) {
    throw new Error(`the coordinator at ${from} speaks protocol version ${result.data.protocolVersion}; this client speaks ${PROTOCOL_VERSION}`);
  }
  return result.data;
}

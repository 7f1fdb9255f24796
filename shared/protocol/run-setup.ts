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
  /** With a model the coordinator serves: SHA-256 (hex) of each file under MODEL_PATH, by file name, as served. */
  modelFiles: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)).optional(),
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

/**
 * A fetch for a client's model that checks each file it gets from the coordinator's model path
 * against the setup's `modelFiles` (SHA-256 of the bytes), so that a model changed on the way or
 * on the coordinator's disk is refused by name before it is built. Other URLs pass through.
 *
 * @example
 * const get = checkedModelFetch(fetch, 'https://coordinator:4000', setup.modelFiles, sha256Hex);
 */
export function checkedModelFetch(
  get: typeof fetch, base: string, files: Record<string, string> | undefined, sha256Hex: (bytes: Uint8Array) => string,
): typeof fetch {
  const prefix = `${base}${MODEL_PATH}`;
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const response = await get(input, init);
    if (!url.startsWith(prefix) || !files || !response.ok) return response;
    const name = decodeURIComponent(new URL(url).pathname.slice(MODEL_PATH.length));
    const expected = files[name];
    if (expected === undefined) throw new Error(`the coordinator served model file "${name}", which its setup does not list`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const actual = sha256Hex(bytes);
    if (actual !== expected) throw new Error(`model file "${name}" from ${base} has SHA-256 ${actual}, but the setup names ${expected}: it changed on the way or on the coordinator`);
    return new Response(bytes, { status: response.status, headers: response.headers });
  };
}

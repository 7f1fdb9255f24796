import type { Backbone, ImageShape } from '../shared/embedding/backbone.js';
import type { CreatedBackbone } from '../shared/embedding/backbone-registry.js';
import type { Embeddings } from '../shared/embedding/embeddings.js';
import type { LabelledDataset } from '../shared/datasets/labelled-dataset.js';
import { copyMismatch, datasetIdentity } from '../shared/datasets/dataset-identity.js';
import { checkedModelFetch, MODEL_PATH, parseRunSetup, SETUP_PATH, type RunSetup } from '../shared/protocol/run-setup.js';
import { createHash } from 'node:crypto';
import type { BackendChoice } from '../shared/tensor/tensor-backend.js';
import { ClientNode } from './client-node.js';
import type { CoordinatorLink } from './coordinator-link.js';

/** What a remote client needs from its host: files, tensors and sockets differ between Node and a web browser. */
export interface JoinOptions {
  /** The coordinator, e.g. http://169.254.10.1:4000 */
  url: string;
  token: string;
  clientId: string;
  /** How to GET from the coordinator (one that trusts its certificate authority, in Node). */
  get: typeof fetch;
  /** The run's dataset as this client holds it: from its own disk, a folder a user picked, or the coordinator's pack. */
  loadData(setup: RunSetup): LabelledDataset | Promise<LabelledDataset>;
  /** Builds the backbone the setup names; a model the coordinator serves is fetched with `headers` through `get`. */
  createBackbone(spec: RunSetup['backbone'], shape: ImageShape, backend: BackendChoice, headers: Record<string, string>, get: typeof fetch): Promise<CreatedBackbone>;
  /** The embeddings of the data (Node adds its disk cache). */
  embeddings(backbone: Backbone, data: LabelledDataset): Embeddings;
  link(base: string): CoordinatorLink;
  /** The codecs and codec features this client offers in its hello; all that protofed has when absent. */
  codecs?: readonly string[] | undefined;
  log?: ((line: string) => void) | undefined;
  /** Called once the data, the backbone and the node are ready, before the node says hello. */
  onReady?: ((ready: { setup: RunSetup; data: LabelledDataset; backbone: Backbone; tensorBackend: string; node: ClientNode }) => void) | undefined;
}

/** The headers that authenticate a client to its coordinator's HTTP endpoints. */
export function clientHeaders(clientId: string, token: string): Record<string, string> {
  return { authorization: `Bearer ${token}`, 'x-protofed-client': clientId };
}

/**
 * Fetches and checks the run's setup with this client's key.
 *
 * @example
 * const setup = await fetchRunSetup('http://10.0.0.1:4000', 'c1', key, fetch);
 */
export async function fetchRunSetup(base: string, clientId: string, token: string, get: typeof fetch): Promise<RunSetup> {
  let response: Response;
  try {
    response = await get(`${base}${SETUP_PATH}`, { headers: clientHeaders(clientId, token), signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    throw new Error(`cannot reach the coordinator at ${base}: ${(err as { cause?: Error }).cause?.message ?? (err as Error).message}`);
  }
  if (response.status === 401) throw new Error(`the coordinator at ${base} refused this client's key (unknown client id or wrong key)`);
  if (!response.ok) throw new Error(`the coordinator at ${base} answered ${response.status} for its setup`);
  return parseRunSetup(await response.json(), base);
}

/**
 * Joins a remote run, whatever the host: it fetches the run's setup with its own key, loads the
 * data and checks it is the coordinator's copy, builds the backbone (the model from the
 * coordinator) and checks its hash, then runs the one ClientNode until the run ends.
 * client/remote-client.ts is the Node host, client/browser/ the web browser's.
 *
 * @example
 * await joinRun({ url, token, clientId: 'c1', get: fetch, loadData, createBackbone, embeddings, link });
 */
export async function joinRun(o: JoinOptions): Promise<void> {
  const base = o.url.replace(/\/+$/, '');
  const headers = clientHeaders(o.clientId, o.token);
  const setup = await fetchRunSetup(base, o.clientId, o.token, o.get);
  const data = await o.loadData(setup);
  const mismatch = copyMismatch(data.name, setup.datasetCopy, datasetIdentity(data));
  if (mismatch) throw new Error(mismatch);
  const spec = setup.backbone.name === 'tfjs-model' && setup.backbone.url.startsWith(MODEL_PATH)
    ? { ...setup.backbone, url: `${base}${setup.backbone.url}` }
    : setup.backbone;
  const shape = { rows: data.train.rows, cols: data.train.cols, channels: data.train.channels };
  const get = checkedModelFetch(o.get, base, setup.modelFiles, (bytes) => createHash('sha256').update(bytes).digest('hex'));
  const { backbone, tensorBackend } = await o.createBackbone(spec, shape, setup.backend, headers, get);
  o.log?.(`[${o.clientId}] ${data.name} from ${data.source}; backbone ${backbone.name} (${backbone.dim}-d) on ${tensorBackend}`);
  if (backbone.modelHash !== setup.modelHash) {
    backbone.dispose();
    throw new Error(`the model built here (hash ${backbone.modelHash}) is not the coordinator's (hash ${setup.modelHash}): a different model file, or a different input shape or normalisation`);
  }
  const store = o.embeddings(backbone, data);
  const node = new ClientNode({
    clientId: o.clientId, token: o.token, store, link: o.link(base), testPerClass: setup.testPerClass, codecs: o.codecs, log: o.log,
  });
  o.onReady?.({ setup, data, backbone, tensorBackend, node });
  try {
    await node.run();
  } finally {
    store.close();
    backbone.dispose();
  }
}

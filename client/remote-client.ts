import { loadDataset } from '../shared/datasets/dataset-registry.js';
import { createBackbone } from '../shared/embedding/backbone-registry.js';
import { EmbeddingStore } from '../shared/embedding/embedding-store.js';
import { MODEL_PATH, parseRunSetup, SETUP_PATH } from '../shared/protocol/run-setup.js';
import type { BackendChoice } from '../shared/tensor/tensor-backend.js';
import { trustingFetch } from '../shared/protocol/trusting-fetch.js';
import { copyMismatch, datasetIdentity } from '../shared/datasets/dataset-identity.js';
import { ClientNode } from './client-node.js';
import { SocketCoordinatorLink } from './coordinator-link.js';

export interface RemoteClientOptions {
  /** The coordinator, e.g. http://169.254.10.1:4000 */
  url: string;
  token: string;
  clientId: string;
  /** Dataset folder on this host; the usual places when absent. */
  dataDir?: string | undefined;
  backend?: BackendChoice | undefined;
  cacheDir?: string | undefined;
  /** The certificate authority (PEM) that signed the coordinator's certificate, for an https URL; the system's when absent. */
  ca?: string | undefined;
  /** This client's certificate and key (PEM), for a coordinator that requires mutual TLS. */
  clientCertificate?: { cert: string; key: string } | undefined;
  /** How long to keep reconnecting to a coordinator that went away (default 10 minutes). */
  giveUpAfterMs?: number | undefined;
  log?: (line: string) => void;
}

/**
 * A client on another host (`clients.mode: remote`): it fetches the run's setup from the
 * coordinator (which dataset to load from its own disk, and the model, which the coordinator
 * serves), then joins over socket.io and runs the same client node as every other mode.
 *
 * @example
 * await runRemoteClient({ url: 'http://169.254.10.1:4000', token, clientId: 'c1' });
 */
export async function runRemoteClient(o: RemoteClientOptions): Promise<void> {
  const base = o.url.replace(/\/+$/, '');
  const headers = { authorization: `Bearer ${o.token}`, 'x-protofed-client': o.clientId };
  const get = trustingFetch(o.ca, o.clientCertificate);
  let response: Response;
  try {
    response = await get(`${base}${SETUP_PATH}`, { headers, signal: AbortSignal.timeout(15_000) });
  } catch (err) {
    throw new Error(`cannot reach the coordinator at ${base}: ${(err as { cause?: Error }).cause?.message ?? (err as Error).message}`);
  }
  if (response.status === 401) throw new Error(`the coordinator at ${base} refused this client's key (unknown client id or wrong key)`);
  if (!response.ok) throw new Error(`the coordinator at ${base} answered ${response.status} for its setup`);
  const setup = parseRunSetup(await response.json(), base);
  const data = loadDataset({ ...setup.dataset, dir: o.dataDir ?? setup.dataset.dir });
  const mismatch = copyMismatch(data.name, setup.datasetCopy, datasetIdentity(data));
  if (mismatch) throw new Error(mismatch);
  const spec = setup.backbone.name === 'tfjs-model' && setup.backbone.url.startsWith(MODEL_PATH)
    ? { ...setup.backbone, url: `${base}${setup.backbone.url}` }
    : setup.backbone;
  const shape = { rows: data.train.rows, cols: data.train.cols, channels: data.train.channels };
  const { backbone, tensorBackend } = await createBackbone(spec, shape, o.backend ?? setup.backend, headers, get);
  o.log?.(`[${o.clientId}] ${data.name} from ${data.source}; backbone ${backbone.name} (${backbone.dim}-d) on ${tensorBackend}`);
  if (backbone.modelHash !== setup.modelHash) {
    backbone.dispose();
    throw new Error(`the model built here (hash ${backbone.modelHash}) is not the coordinator's (hash ${setup.modelHash}): a different model file, or a different input shape or normalisation`);
  }
  const store = new EmbeddingStore(backbone, data, { cacheDir: o.cacheDir });
  const node = new ClientNode({
    clientId: o.clientId, token: o.token, store, link: new SocketCoordinatorLink(base, {
      ca: o.ca, clientCertificate: o.clientCertificate, firstDelayMs: 500, maxDelayMs: 10_000, giveUpAfterMs: o.giveUpAfterMs ?? 600_000, log: (line) => o.log?.(`[${o.clientId}] ${line}`),
    }), testPerClass: setup.testPerClass, log: o.log,
  });
  try {
    await node.run();
  } finally {
    store.close();
    backbone.dispose();
  }
}

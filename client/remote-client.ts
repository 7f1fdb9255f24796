import { loadDataset } from '../shared/datasets/dataset-registry.js';
import { createBackbone } from '../shared/embedding/backbone-registry.js';
import { EmbeddingStore } from '../shared/embedding/embedding-store.js';
import type { BackendChoice } from '../shared/tensor/tensor-backend.js';
import { trustingFetch } from '../shared/protocol/trusting-fetch.js';
import { joinRun } from './remote-join.js';
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
  await joinRun({
    url: o.url, token: o.token, clientId: o.clientId, get: trustingFetch(o.ca, o.clientCertificate), log: o.log,
    loadData: (setup) => loadDataset({ ...setup.dataset, dir: o.dataDir ?? setup.dataset.dir }),
    createBackbone: (spec, shape, backend, headers, get) => createBackbone(spec, shape, o.backend ?? backend, headers, get),
    embeddings: (backbone, data) => new EmbeddingStore(backbone, data, { cacheDir: o.cacheDir }),
    link: (base) => new SocketCoordinatorLink(base, {
      ca: o.ca, clientCertificate: o.clientCertificate, firstDelayMs: 500, maxDelayMs: 10_000, giveUpAfterMs: o.giveUpAfterMs ?? 600_000, log: (line) => o.log?.(`[${o.clientId}] ${line}`),
    }),
  });
}

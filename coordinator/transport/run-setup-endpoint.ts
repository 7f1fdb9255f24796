import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { ClientKeys } from '../../shared/protocol/client-keys.js';
import { peerCertificateName } from './client-connection.js';
import { DATASET_PACK_PATH, MODEL_PATH, SETUP_PATH, type RunSetup } from '../../shared/protocol/run-setup.js';

/** model.json and the weight files it names: the only files served. */
export function modelFiles(dir: string): Set<string> {
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { weightsManifest?: { paths: string[] }[] };
  const names = (json.weightsManifest ?? []).flatMap((g) => g.paths.map((p) => p.replace(/^\.\//, '')));
  return new Set(['model.json', ...names.filter((n) => !n.includes('/') && !n.includes('..'))]);
}


/**
 * The bytes each client fetched from the setup endpoint (the setup and the model), by client id;
 * undefined for answers to requests that did not authenticate (never counted against a client).
 */
export type SetupByteCounter = (clientId: string | undefined, bytes: number) => void;

/**
 * An HTTP handler for GET /protofed/setup (see shared/protocol/run-setup.ts), /protofed/model/{model.json,weights.bin} and,
 * when `datasetPack` is given, /protofed/dataset-pack (the run's dataset in one gzipped file, for a client that has no copy, e.g.
 * a browser's demo), all behind each client's own key (`X-Protofed-Client: <id>`, `Authorization: Bearer <key>`) and
 * counted as that client's setup traffic. Anything else gets 404.
 *
 * @example
 * createServer(runSetupHandler(() => setup, keys, modelDir, countBytes));
 */
export function runSetupHandler(
  setup: () => RunSetup | undefined,
  keys: ClientKeys,
  modelDir: string | undefined,
  count: SetupByteCounter,
  /** Mutual TLS: the client certificate's common name must be the id the request names. */
  requireCertificate = false,
  /** The run's dataset as a gzipped dataset pack (shared/datasets/dataset-pack.ts), made when first asked for. */
  datasetPack?: () => Uint8Array,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname.startsWith('/socket.io/')) return;
    const clientId = req.headers['x-protofed-client'];
    const bearer = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
    const authenticated = keys.verify(clientId, bearer) && (!requireCertificate || peerCertificateName(req.socket) === clientId);
    const send = (status: number, body: string | Uint8Array, type = 'application/json', encoding?: 'gzip'): void => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...(encoding ? { 'content-encoding': encoding } : {}) }).end(body);
      count(authenticated ? clientId as string : undefined, Buffer.byteLength(body));
    };
    if (req.method !== 'GET') return send(405, JSON.stringify({ error: 'only GET' }));
    const known = url.pathname === SETUP_PATH || url.pathname.startsWith(MODEL_PATH) || url.pathname === DATASET_PACK_PATH;
    if (!known) return send(404, JSON.stringify({ error: 'not found' }));
    if (!authenticated) return send(401, JSON.stringify({ error: 'not authenticated: unknown client id or wrong key' }));
    if (url.pathname === SETUP_PATH) {
      const s = setup();
      return s ? send(200, JSON.stringify(s)) : send(503, JSON.stringify({ error: 'the run is not ready yet' }));
    }
    if (url.pathname === DATASET_PACK_PATH) {
      return datasetPack
        ? send(200, datasetPack(), 'application/octet-stream', 'gzip')
        : send(404, JSON.stringify({ error: "this coordinator does not serve its dataset (its scenario's clients.serveDataset is off): use a copy of the run's data" }));
    }
    const file = url.pathname.slice(MODEL_PATH.length);
    if (!modelDir || !modelFiles(modelDir).has(file)) return send(404, JSON.stringify({ error: 'no such model file' }));
    send(200, readFileSync(join(modelDir, file)), file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
  };
}

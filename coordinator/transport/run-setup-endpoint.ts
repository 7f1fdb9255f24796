import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { MODEL_PATH, SETUP_PATH, type RunSetup } from '../../shared/protocol/run-setup.js';

/** model.json and the weight files it names: the only files served. */
function modelFiles(dir: string): Set<string> {
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { weightsManifest?: { paths: string[] }[] };
  const names = (json.weightsManifest ?? []).flatMap((g) => g.paths.map((p) => p.replace(/^\.\//, '')));
  return new Set(['model.json', ...names.filter((n) => !n.includes('/') && !n.includes('..'))]);
}


/** The bytes each client fetched from the setup endpoint (the setup and the model), by client id. */
export type SetupByteCounter = (clientId: string, bytes: number) => void;

/**
 * An HTTP handler for GET /protofed/setup (see shared/protocol/run-setup.ts) and /protofed/model/{model.json,weights.bin}, both
 * behind the run's token (`Authorization: Bearer <token>`). Anything else gets 404.
 *
 * @example
 * createServer(runSetupHandler(() => setup, token, modelDir, countBytes));
 */
export function runSetupHandler(
  setup: () => RunSetup | undefined,
  token: string,
  modelDir: string | undefined,
  count: SetupByteCounter,
): (req: IncomingMessage, res: ServerResponse) => void {
  const expected = createHash('sha256').update(`Bearer ${token}`).digest();
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname.startsWith('/socket.io/')) return;
    const send = (status: number, body: string | Buffer, type = 'application/json'): void => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) }).end(body);
      count(String(req.headers['x-protofed-client'] ?? ''), Buffer.byteLength(body));
    };
    if (req.method !== 'GET') return send(405, JSON.stringify({ error: 'only GET' }));
    const given = createHash('sha256').update(String(req.headers.authorization ?? '')).digest();
    const known = url.pathname === SETUP_PATH || url.pathname.startsWith(MODEL_PATH);
    if (!known) return send(404, JSON.stringify({ error: 'not found' }));
    if (!timingSafeEqual(given, expected)) return send(401, JSON.stringify({ error: 'wrong or missing token' }));
    if (url.pathname === SETUP_PATH) {
      const s = setup();
      return s ? send(200, JSON.stringify(s)) : send(503, JSON.stringify({ error: 'the run is not ready yet' }));
    }
    const file = url.pathname.slice(MODEL_PATH.length);
    if (!modelDir || !modelFiles(modelDir).has(file)) return send(404, JSON.stringify({ error: 'no such model file' }));
    send(200, readFileSync(join(modelDir, file)), file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
  };
}

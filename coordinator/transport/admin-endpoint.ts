import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export const ADMIN_FORGET_PATH = '/protofed/admin/forget';

/** What the run's operator may ask of a running coordinator. */
export interface AdminActions {
  /** Unlearns a client exactly; undefined while the run is not ready for it. */
  forget(clientId: string): Promise<{ tableVersion: number; tableChecksum: string; alreadyGone: boolean }> | undefined;
}

/**
 * The operator's endpoint on the coordinator's HTTP server: `POST /protofed/admin/forget?client=ID`
 * with `Authorization: Bearer <admin key>` (a key of its own, written to the results folder's
 * admin.json, readable by the run's user only; never a client's key). Returns true when it
 * handled the request.
 *
 * @example
 * const admin = adminHandler(key, { forget: (id) => runner.forget(id, ...) });
 * createServer((req, res) => admin(req, res) || setup(req, res));
 */
export function adminHandler(adminKey: string, actions: AdminActions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const expected = createHash('sha256').update(adminKey).digest();
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== ADMIN_FORGET_PATH) return false;
    const send = (status: number, body: object): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
    };
    const given = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''))?.[1] ?? '';
    if (!timingSafeEqual(createHash('sha256').update(given).digest(), expected)) {
      send(401, { error: 'not authenticated' });
      return true;
    }
    if (req.method !== 'POST') {
      send(405, { error: 'only POST' });
      return true;
    }
    const clientId = url.searchParams.get('client') ?? '';
    let pending: ReturnType<AdminActions['forget']>;
    try {
      pending = actions.forget(clientId);
    } catch (err) {
      send(400, { error: (err as Error).message });
      return true;
    }
    if (!pending) {
      send(503, { error: 'the run is not ready yet; try again' });
      return true;
    }
    pending.then((done) => send(200, done), (err: Error) => send(400, { error: err.message }));
    return true;
  };
}

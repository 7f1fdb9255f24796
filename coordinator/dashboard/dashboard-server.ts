import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server as HttpsServer } from 'node:https';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Server } from 'socket.io';
import { packageRoot } from '../../shared/datasets/data-home.js';
import type { DashboardFeed } from './dashboard-feed.js';

export const DASHBOARD_PATH = '/protofed/dashboard';
/** The dashboard's own socket.io endpoint (its own server and namespace, apart from the clients'). */
export const DASHBOARD_SOCKET_PATH = '/protofed/live/';
export const DASHBOARD_NAMESPACE = '/dashboard';
const MAX_VIEWERS = 16;

/** The page and the files it loads, all served from this package: the dashboard works offline. */
function assets(): Map<string, { file: string; type: string }> {
  const require = createRequire(import.meta.url);
  const page = join(packageRoot() ?? '.', 'coordinator/dashboard/page');
  return new Map([
    [DASHBOARD_PATH, { file: join(page, 'index.html'), type: 'text/html; charset=utf-8' }],
    [`${DASHBOARD_PATH}/dashboard.js`, { file: join(page, 'dashboard.js'), type: 'text/javascript; charset=utf-8' }],
    [`${DASHBOARD_PATH}/dashboard.css`, { file: join(page, 'dashboard.css'), type: 'text/css; charset=utf-8' }],
    [`${DASHBOARD_PATH}/uPlot.js`, { file: require.resolve('uplot/dist/uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' }],
    [`${DASHBOARD_PATH}/uPlot.css`, { file: require.resolve('uplot/dist/uPlot.min.css'), type: 'text/css; charset=utf-8' }],
  ]);
}

/**
 * A live view of a run, on the coordinator's own HTTP server: a page at /protofed/dashboard, and
 * the run's events pushed over socket.io (namespace /dashboard, path /protofed/live/) to viewers
 * that hold the viewer key, a secret of its own (never a client's key). A viewer gets the history
 * so far when it connects, then every mission, client change and phase as it happens. Viewers can
 * send nothing.
 *
 * @example
 * const dashboard = new DashboardServer(feed, viewerKey);
 * dashboard.attach(httpServer); // then serve dashboard.handle(req, res) in the HTTP handler
 */
export class DashboardServer {
  private io: Server | undefined;
  private readonly files = assets();
  private readonly expected: Buffer;

  constructor(private readonly feed: DashboardFeed, viewerKey: string) {
    this.expected = createHash('sha256').update(viewerKey).digest();
  }

  attach(http: HttpServer | HttpsServer): void {
    let viewers = 0;
    this.io = new Server(http, {
      path: DASHBOARD_SOCKET_PATH,
      // The browser's socket.io client, from this package (no CDN): /protofed/live/socket.io.min.js.
      serveClient: true,
      maxHttpBufferSize: 4096,
      allowRequest: (_req, answer) => answer(null, viewers < MAX_VIEWERS),
      destroyUpgrade: false,
    });
    const nsp = this.io.of(DASHBOARD_NAMESPACE);
    nsp.use((socket, next) => {
      const given = (socket.handshake.auth as { viewer?: unknown }).viewer;
      const ok = typeof given === 'string' && timingSafeEqual(createHash('sha256').update(given).digest(), this.expected);
      next(ok ? undefined : new Error('not authorised: the dashboard needs the viewer key'));
    });
    nsp.on('connection', (socket) => {
      viewers++;
      socket.on('disconnect', () => viewers--);
      socket.emit('history', this.feed.history());
    });
    this.feed.on('mission', (m) => nsp.emit('mission', m));
    this.feed.on('clients', (rows) => nsp.emit('clients', rows));
    this.feed.on('population', (p) => nsp.emit('population', p));
    this.feed.on('phase', (p) => nsp.emit('phase', p));
  }

  /**
   * A dashboard on an HTTP server of its own (a run with no coordinator server, e.g. population
   * mode): it listens on a free loopback port; the URL carries the viewer key.
   */
  static async serveAlone(feed: DashboardFeed, viewerKey: string): Promise<{ url: string; close(): Promise<void> }> {
    const dashboard = new DashboardServer(feed, viewerKey);
    const http = createServer((req, res) => {
      if (!dashboard.handle(req, res)) res.writeHead(404).end();
    });
    dashboard.attach(http);
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = http.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}${DASHBOARD_PATH}#viewer=${viewerKey}`,
      close: async () => {
        await dashboard.close();
        await new Promise<void>((resolve) => http.close(() => resolve()));
      },
    };
  }

  /** Serves the page and its files; false for any other request. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const asset = this.files.get(path);
    if (!asset) return false;
    const body = readFileSync(asset.file);
    res.writeHead(200, { 'content-type': asset.type, 'content-length': body.byteLength, 'cache-control': 'no-store' }).end(body);
    return true;
  }

  /**
   * Says goodbye to the viewers after what was already sent to them (the run's last phase), waits
   * up to half a second for them to go, then cuts the rest off. The HTTP server is the
   * coordinator's, which closes it.
   */
  async close(): Promise<void> {
    if (!this.io) return;
    const engine = this.io.engine;
    this.io.of(DASHBOARD_NAMESPACE).disconnectSockets(false);
    const until = Date.now() + 500;
    while (engine.clientsCount > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
    engine.close();
  }
}

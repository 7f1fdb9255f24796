import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { packageRoot } from '../../shared/datasets/data-home.js';
import { browserClientBundle } from './browser-bundle.js';

export const JOIN_PATH = '/protofed/join';
/** tfjs's WebAssembly builds (plain, SIMD, threaded SIMD); the browser picks the one it can run. */
const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

/**
 * The page that joins a remote run as a client in a web browser (/protofed/join), and what it
 * loads, all from this package so that it works offline: the page, its style, the client bundled
 * by esbuild on the first request (browser-bundle.ts) and tfjs's wasm files. None of it is
 * secret: the page asks for the client's id and key (or reads them from the URL fragment, which
 * the browser never sends), and everything it then fetches from the run is behind that key
 * (coordinator/transport/run-setup-endpoint.ts). Returns false for any other request.
 *
 * @example
 * const joinPage = joinPageHandler();
 * createServer((req, res) => joinPage(req, res) || setupEndpoint(req, res));
 */
export function joinPageHandler(log: (line: string) => void = () => {}): (req: IncomingMessage, res: ServerResponse) => boolean {
  const require = createRequire(import.meta.url);
  const page = join(packageRoot() ?? '.', 'coordinator/join/page');
  const wasmDir = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  const files = new Map<string, { file: string; type: string }>([
    [JOIN_PATH, { file: join(page, 'index.html'), type: 'text/html; charset=utf-8' }],
    [`${JOIN_PATH}/join.css`, { file: join(page, 'join.css'), type: 'text/css; charset=utf-8' }],
    ...WASM_FILES.map((f) => [`${JOIN_PATH}/wasm/${f}`, { file: join(wasmDir, f), type: 'application/wasm' }] as const),
  ]);
  let gzipped: Promise<Uint8Array> | undefined;
  return (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === `${JOIN_PATH}/client.js`) {
      gzipped ??= browserClientBundle().then((b) => {
        log(`bundled the browser client (${(b.code.byteLength / 1e6).toFixed(1)} MB) in ${b.seconds.toFixed(1)} s`);
        return gzipSync(b.code);
      });
      gzipped.then(
        (body) => res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'content-encoding': 'gzip', 'content-length': body.byteLength, 'cache-control': 'no-cache' }).end(body),
        (err: Error) => {
          gzipped = undefined;
          const body = `throw new Error(${JSON.stringify(`the coordinator could not bundle the browser client: ${err.message}`)});`;
          res.writeHead(500, { 'content-type': 'text/javascript; charset=utf-8' }).end(body);
        },
      );
      return true;
    }
    const asset = files.get(path);
    if (!asset) return false;
    const body = readFileSync(asset.file);
    res.writeHead(200, { 'content-type': asset.type, 'content-length': body.byteLength, 'cache-control': 'no-cache' }).end(body);
    return true;
  };
}

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../shared/datasets/data-home.js';

/** The browser client's script, bundled, and how long bundling took. */
export interface BrowserBundle {
  code: Uint8Array;
  seconds: number;
  /** The file bundled from (source under tsx, compiled JavaScript in an installed package). */
  entry: string;
}

/** Node builtins the shared client code imports, and what stands in for them in a browser (client/browser/shims/). */
const SHIMS = { 'node:crypto': 'node-crypto', 'node:zlib': 'node-zlib', 'node:events': 'node-events' } as const;

/** The source of the browser client (client/browser/join-page.ts), or its compiled form in dist/. */
function browserSource(): { entry: string; shim: (name: string) => string } {
  const root = packageRoot() ?? '.';
  for (const [dir, ext] of [[join(root, 'client/browser'), '.ts'], [join(root, 'dist/client/browser'), '.js']] as const) {
    const entry = join(dir, `join-page${ext}`);
    if (existsSync(entry)) return { entry, shim: (name) => join(dir, 'shims', `${name}${ext}`) };
  }
  throw new Error(`the browser client's source is missing (client/browser/join-page.ts, or dist/client/browser/join-page.js after npm run build) under ${root}`);
}

let bundled: Promise<BrowserBundle> | undefined;

/**
 * The browser client (client/browser/join-page.ts with everything it imports: the client node,
 * the protocol, msgpackr, socket.io-client, tfjs and its wasm backend) as one minified ES module,
 * made by esbuild on the first call and kept for the life of the process. The coordinator serves
 * it from its own port, so a browser needs no CDN. The coordinator names the file but does not
 * import it (as the process spawner names the client's entry file).
 *
 * @example
 * const { code } = await browserClientBundle(); // about 2 MB
 */
export function browserClientBundle(): Promise<BrowserBundle> {
  bundled ??= build();
  bundled.catch(() => (bundled = undefined));
  return bundled;
}

async function build(): Promise<BrowserBundle> {
  const started = performance.now();
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (err) {
    throw new Error(`the browser client is bundled with esbuild, which does not load here (${(err as Error).message}); install protofed's dependencies`);
  }
  const { entry, shim } = browserSource();
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: true,
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
    plugins: [{
      name: 'protofed-browser-shims',
      setup(build) {
        build.onResolve({ filter: /^node:(crypto|zlib|events)$/ }, (args) => ({ path: shim(SHIMS[args.path as keyof typeof SHIMS]) }));
      },
    }],
  });
  const code = result.outputFiles[0]!.contents;
  return { code, seconds: (performance.now() - started) / 1000, entry };
}

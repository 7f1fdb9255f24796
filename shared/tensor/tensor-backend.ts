import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { registerWasmConvGradients } from './wasm-conv-gradients.js';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export type BackendChoice = BackendName | 'auto';

export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

export class BackendUnavailableError extends Error {}

let active: BackendName | undefined;
const failures = new Map<BackendName, string>();
const require = createRequire(import.meta.url);

/**
 * Chooses the tensor backend once per process: native TensorFlow (@tensorflow/tfjs-node) when
 * it loads, else WebAssembly, else plain JavaScript. A forced choice that cannot load fails with
 * the reason. Returns the backend in use.
 *
 * @example
 * const name = await selectBackend('auto'); // 'wasm' on a machine without libtensorflow
 */
export async function selectBackend(choice: BackendChoice = 'auto'): Promise<BackendName> {
  if (active && (choice === 'auto' || choice === active)) return active;
  // Production mode skips tfjs's debug checks and its advice to install tfjs-node, which protofed
  // already tries first and reports.
  tf.enableProdMode();
  const order: BackendName[] = choice === 'auto' ? ['tensorflow', 'wasm', 'cpu'] : [choice];
  for (const name of order) {
    const reason = await tryBackend(name);
    if (reason === undefined) {
      active = name;
      return name;
    }
    failures.set(name, reason);
  }
  const tried = order.map((n) => `${n}: ${failures.get(n)}`).join('; ');
  throw new BackendUnavailableError(`tensor backend ${choice === 'auto' ? '(any)' : `"${choice}"`} is not available (${tried})`);
}

/** The backend chosen by selectBackend, or undefined before. */
/**
 * Every backend that loads here (tfjs-node, wasm, cpu), each made tfjs's backend in turn while the
 * caller works with it: the loop of a benchmark that measures each.
 *
 * @example
 * for await (const backend of eachLoadableBackend()) measure(backend);
 */
export async function* eachLoadableBackend(): AsyncGenerator<BackendName> {
  for (const backend of ['tensorflow', 'wasm', 'cpu'] as const) {
    try {
      await selectBackend(backend);
    } catch {
      continue;
    }
    await tf.setBackend(backend);
    yield backend;
  }
}

export function activeBackend(): BackendName | undefined {
  return active;
}

/** Why each backend that was tried could not be used. */
export function backendFailures(): Record<string, string> {
  return Object.fromEntries(failures);
}

async function tryBackend(name: BackendName): Promise<string | undefined> {
  try {
    if (name === 'tensorflow') {
      // The native addon registers the 'tensorflow' backend when it loads.
      await import('@tensorflow/tfjs-node' as string);
    } else if (name === 'wasm') {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      const dist = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/';
      wasm.setWasmPaths(dist);
      registerWasmConvGradients();
    }
    if (!(await tf.setBackend(name))) return 'it did not initialise';
    await tf.ready();
    return undefined;
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    return message.split('\n')[0];
  }
}

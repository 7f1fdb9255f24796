import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { runRemoteClient } from '../client/remote-client.js';
import { defaultCacheDir } from '../shared/embedding/embedding-store.js';
import type { BackendChoice } from '../shared/tensor/tensor-backend.js';
import { runCommand } from './run-command.js';

export interface CoordinatorCommandOptions {
  scenario?: string;
  resume?: string;
  force?: boolean;
  host: string;
  port: string;
  tokenFile: string;
  out?: string;
  waitMs?: string;
  quiet?: boolean;
}

/** Reads a token file: its first line, which must not be empty. */
function readToken(file: string): string {
  let text: string;
  try {
    text = readFileSync(resolve(file), 'utf8');
  } catch (err) {
    throw new Error(`cannot read the token file ${file}: ${(err as Error).message}`);
  }
  const token = text.split('\n')[0]!.trim();
  if (token.length < 8) throw new Error(`the token in ${file} is missing or shorter than 8 characters`);
  return token;
}

/** `protofed coordinator`: runs a scenario with remote clients, waits for them, and exits with the results. */
export async function coordinatorCommand(options: CoordinatorCommandOptions): Promise<void> {
  const port = Number.parseInt(options.port, 10);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535, got ${options.port}`);
  const waitMs = options.waitMs === undefined ? undefined : Number.parseInt(options.waitMs, 10);
  await runCommand(options.scenario, {
    out: options.out,
    resume: options.resume,
    force: options.force,
    quiet: options.quiet,
    mode: 'remote',
    remote: { host: options.host, port, token: readToken(options.tokenFile), waitMs },
  });
}

export interface ClientCommandOptions {
  connect: string;
  token?: string;
  tokenFile?: string;
  id: string;
  data?: string;
  backend?: BackendChoice;
  cache?: boolean;
  giveUpAfter?: string;
}

/** `protofed client`: joins a coordinator from this host. */
export async function clientCommand(options: ClientCommandOptions): Promise<void> {
  const token = options.token ?? (options.tokenFile ? readToken(options.tokenFile) : undefined);
  if (!token) throw new Error('give the run\'s token with --token or --token-file');
  const giveUpAfter = options.giveUpAfter === undefined ? undefined : Number(options.giveUpAfter);
  if (giveUpAfter !== undefined && !(giveUpAfter > 0)) throw new Error(`--give-up-after must be a positive number of seconds, got ${options.giveUpAfter}`);
  await runRemoteClient({
    url: options.connect,
    token,
    clientId: options.id,
    dataDir: options.data,
    backend: options.backend,
    cacheDir: options.cache === false ? undefined : defaultCacheDir(),
    giveUpAfterMs: giveUpAfter === undefined ? undefined : giveUpAfter * 1000,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  // The tensor backend keeps the event loop alive; the run is over.
  process.exit(0);
}

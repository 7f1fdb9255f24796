import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { runRemoteClient } from '../client/remote-client.js';
import { defaultCacheDir } from '../shared/embedding/embedding-store.js';
import type { BackendChoice } from '../shared/tensor/tensor-backend.js';
import { runCommand } from './run-command.js';
import { ClientKeys, clientSecretFrom } from '../shared/protocol/client-keys.js';

export interface CoordinatorCommandOptions {
  scenario?: string;
  resume?: string;
  force?: boolean;
  host: string;
  port: string;
  keys: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  out?: string;
  waitMs?: string;
  quiet?: boolean;
  json?: boolean;
  dashboard?: boolean;
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(resolve(file), 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${what} ${file}: ${(err as Error).message}`);
  }
}

/** `protofed coordinator`: runs a scenario with remote clients, waits for them, and exits with the results. */
export async function coordinatorCommand(options: CoordinatorCommandOptions): Promise<void> {
  const port = Number.parseInt(options.port, 10);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535, got ${options.port}`);
  const waitMs = options.waitMs === undefined ? undefined : Number.parseInt(options.waitMs, 10);
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) throw new Error('TLS needs both --tls-cert and --tls-key');
  if (options.tlsClientCa && !options.tlsCert) throw new Error('mutual TLS (--tls-client-ca) needs the coordinator\'s own --tls-cert and --tls-key');
  const tls = options.tlsCert ? {
    cert: readText(options.tlsCert, 'the TLS certificate'), key: readText(options.tlsKey!, 'the TLS key'),
    clientCa: options.tlsClientCa === undefined ? undefined : readText(options.tlsClientCa, 'the client certificate authority'),
  } : undefined;
  if (!tls && !isLoopback(options.host)) {
    process.stderr.write(`warning: listening on ${options.host} without TLS: the clients' keys and the run's traffic cross the network in clear text (give --tls-cert and --tls-key)\n`);
  }
  await runCommand(options.scenario, {
    out: options.out,
    resume: options.resume,
    force: options.force,
    quiet: options.quiet,
    mode: 'remote',
    dashboard: options.dashboard,
    json: options.json,
    remote: { host: options.host, port, keys: ClientKeys.parse(readText(options.keys, 'the keys file'), options.keys), tls, waitMs },
  });
}

export interface ClientCommandOptions {
  connect: string;
  id: string;
  keyFile?: string;
  ca?: string;
  tlsCert?: string;
  tlsKey?: string;
  data?: string;
  backend?: BackendChoice;
  cache?: boolean;
  giveUpAfter?: string;
}

/** `protofed client`: joins a coordinator from this host. */
export async function clientCommand(options: ClientCommandOptions): Promise<void> {
  // A key is never taken from the command line, where other users see it (ps).
  const fromEnv = process.env.PROTOFED_KEY;
  if (!options.keyFile && !fromEnv) throw new Error('give this client\'s key in a file (--key-file) or in the PROTOFED_KEY environment variable');
  const token = options.keyFile
    ? clientSecretFrom(readText(options.keyFile, 'the key file'), options.id, options.keyFile)
    : clientSecretFrom(fromEnv!, options.id, 'PROTOFED_KEY');
  const giveUpAfter = options.giveUpAfter === undefined ? undefined : Number(options.giveUpAfter);
  if (giveUpAfter !== undefined && !(giveUpAfter > 0)) throw new Error(`--give-up-after must be a positive number of seconds, got ${options.giveUpAfter}`);
  await runRemoteClient({
    url: options.connect,
    token,
    clientId: options.id,
    ca: options.ca === undefined ? undefined : readText(options.ca, 'the certificate authority'),
    clientCertificate: clientCertificateOf(options),
    dataDir: options.data,
    backend: options.backend,
    cacheDir: options.cache === false ? undefined : defaultCacheDir(),
    giveUpAfterMs: giveUpAfter === undefined ? undefined : giveUpAfter * 1000,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  // The tensor backend keeps the event loop alive; the run is over.
  process.exit(0);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function clientCertificateOf(options: { tlsCert?: string; tlsKey?: string }): { cert: string; key: string } | undefined {
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) throw new Error('a client certificate needs both --tls-cert and --tls-key');
  if (options.tlsCert === undefined) return undefined;
  return { cert: readText(options.tlsCert, 'the client certificate'), key: readText(options.tlsKey!, 'the client certificate\'s key') };
}

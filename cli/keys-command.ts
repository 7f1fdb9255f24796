import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ClientKeys } from '../shared/protocol/client-keys.js';

export interface KeysCommandOptions {
  clients: string;
  out: string;
  force?: boolean;
}

/** Client ids from a list: `c0..c9` (a range with a common prefix), `a,b,c`, or both. */
export function parseClientIds(list: string): string[] {
  const ids: string[] = [];
  for (const part of list.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const range = /^([A-Za-z_.-]*)(\d+)\.\.\1?(\d+)$/.exec(part);
    if (range) {
      const [, prefix, from, to] = range;
      const a = Number(from);
      const b = Number(to);
      if (b < a) throw new Error(`--clients: the range ${part} runs backwards`);
      if (b - a >= 100_000) throw new Error(`--clients: the range ${part} is too long (at most 100,000 ids)`);
      for (let i = a; i <= b; i++) ids.push(`${prefix}${i}`);
    } else {
      ids.push(part);
    }
  }
  if (ids.length === 0) throw new Error('--clients names no client');
  return ids;
}

/** `protofed keys`: one fresh secret per client id, written to a private file. */
export function keysCommand(options: KeysCommandOptions): void {
  const out = resolve(options.out);
  if (existsSync(out) && !options.force) throw new Error(`${options.out} exists; give --force to replace it (the clients holding its keys will be refused)`);
  const keys = ClientKeys.generate(parseClientIds(options.clients));
  writeFileSync(out, keys.format(), { mode: 0o600 });
  process.stdout.write(`wrote ${keys.size} client keys to ${options.out} (readable by you only). ` +
    `Start the coordinator with --keys ${options.out}; give each client its own line, as a file (--key-file) or in PROTOFED_KEY.\n`);
}

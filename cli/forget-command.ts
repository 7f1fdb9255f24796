import { readFileSync } from 'node:fs';
import { forgetClient } from '../coordinator/forget-client.js';

/** `protofed forget DIR --client ID`: exact unlearning of one client of a run. */
export async function forgetCommand(dir: string, options: { client: string; ca?: string }): Promise<void> {
  const ca = options.ca === undefined ? undefined : readFileSync(options.ca, 'utf8');
  const r = await forgetClient(dir, options.client, { ca, log: (line) => process.stderr.write(`protofed: ${line}\n`) });
  process.stdout.write(r.alreadyGone
    ? `client ${r.clientId} had already left the run; nothing changed (table checksum ${r.tableChecksum})\n`
    : `forgot client ${r.clientId} in the ${r.where}: table version ${r.tableVersion}, table checksum ${r.tableChecksum}\n`);
}

import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { forgetClient } from '../coordinator/forget-client.js';
import { ADMIN_FORGET_PATH } from '../coordinator/transport/admin-endpoint.js';
import { runVirtual, threeClientScenario } from './support/three-virtual-clients.js';

/** c1 is the one that goes. */
const scenario = (extra: Record<string, unknown> = {}) => threeClientScenario('unlearning', 9, extra);
const run = runVirtual;

/** The run in which c1 never took part: every update it sends is refused (it claims 2^40 examples). */
const neverTookPart = () => run(scenario({ faults: { byzantine: [{ client: 1, attack: 'inflate-counts' }] } }));

describe('exact unlearning', () => {
  it('a client that leaves with its data (the leave message) leaves the table of a run it never took part in', async () => {
    const reference = await neverTookPart();
    const left = await run(scenario({ faults: { leave: [{ client: 1, mission: 3 }] } }));
    expect(left.state.hasLeft('c1')).toBe(true);
    expect(left.summary.missions).toBe(6);
    expect(left.summary.tableChecksum).toBe(reference.summary.tableChecksum);
    const full = await run(scenario());
    expect(full.summary.tableChecksum).not.toBe(reference.summary.tableChecksum);
    expect(left.summary.leftClients).toEqual(['c1']);
  }, 120_000);

  it('protofed forget on a finished run rewrites its saved state; on a running one it goes through the coordinator; both end at the same table', async () => {
    const reference = await neverTookPart();
    const dir = mkdtempSync(join(tmpdir(), 'protofed-forget-'));

    // A finished run: the saved state loses c1, and summary.json says so.
    const finished = join(dir, 'finished');
    const done = await run(scenario(), { outDir: finished });
    expect(done.summary.tableChecksum).not.toBe(reference.summary.tableChecksum);
    expect(existsSync(join(finished, 'admin.json'))).toBe(false);
    const offline = await forgetClient(finished, 'c1');
    expect(offline).toMatchObject({ where: 'saved run', alreadyGone: false, tableChecksum: reference.summary.tableChecksum });
    const summary = JSON.parse(readFileSync(join(finished, 'summary.json'), 'utf8')) as { tableChecksum: string; forgotten: { clientId: string }[] };
    expect(summary.tableChecksum).toBe(reference.summary.tableChecksum);
    expect(summary.forgotten.map((f) => f.clientId)).toEqual(['c1']);
    expect((await forgetClient(finished, 'c1')).alreadyGone).toBe(true);
    await expect(forgetClient(finished, 'c7')).rejects.toThrow(/no client "c7"/);

    // A running run: the operator forgets c1 after mission 2, through the coordinator's admin endpoint.
    const running = join(dir, 'running');
    let live: Promise<unknown> | undefined;
    const result = await run(scenario(), {
      outDir: running,
      onMission: (m) => {
        if (m.mission !== 2) return;
        expect(JSON.parse(readFileSync(join(running, 'admin.json'), 'utf8')).pid).toBe(process.pid);
        live = forgetClient(running, 'c1');
      },
    });
    expect(await live).toMatchObject({ where: 'running coordinator', alreadyGone: false });
    expect(result.summary.leftClients).toEqual(['c1']);
    expect(result.summary.tableChecksum).toBe(reference.summary.tableChecksum);
    expect(existsSync(join(running, 'admin.json'))).toBe(false);
  }, 180_000);

  it('the admin endpoint takes only the operator\'s key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'protofed-admin-'));
    let answer: Promise<number[]> | undefined;
    await run(scenario({ missions: { count: 2, classesPerClient: 2, shotsPerClass: 5 } }), {
      outDir: dir,
      onMission: (m) => {
        if (m.mission !== 0) return;
        const { url, key } = JSON.parse(readFileSync(join(dir, 'admin.json'), 'utf8')) as { url: string; key: string };
        const post = (auth: string, client = 'c1'): Promise<number> => fetch(`${url}${ADMIN_FORGET_PATH}?client=${client}`, { method: 'POST', headers: { authorization: auth } }).then((r) => r.status);
        answer = Promise.all([post('Bearer not-the-key'), post(''), post(`Bearer ${key}`, 'nobody')]);
      },
    });
    expect(await answer).toEqual([401, 401, 400]);
  }, 60_000);
});

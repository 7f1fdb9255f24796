import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MissionResult } from './federation/mission-runner.js';

/**
 * A results folder: `config.json` (the resolved scenario and where everything came from),
 * `metrics.jsonl` (one record per mission and client, plus one global record per mission),
 * and `summary.json`.
 *
 * @example
 * const out = new ResultsWriter('results/run1');
 * out.writeConfig({ scenario, dataset: {...} });
 * out.appendMission(result);
 */
export class ResultsWriter {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'metrics.jsonl'), '');
  }

  writeConfig(config: object): void {
    writeFileSync(join(this.dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  }

  appendMission(r: MissionResult): void {
    const lines = [
      { record: 'global', mission: r.mission, classesKnown: r.classesKnown, newClasses: r.newClasses, globalAccuracy: r.globalAccuracy,
        meanClientAccuracyBefore: r.meanClientAccuracyBefore, meanClientAccuracyAfter: r.meanClientAccuracyAfter,
        tableVersion: r.tableVersion, bytes: r.bytes, late: r.late, wallMs: r.wallMs, simulatedTransferSeconds: r.simulatedTransferSeconds },
      ...r.clients.map((c) => ({ record: 'client', mission: r.mission, clientId: c.clientId, accuracyBefore: c.accuracyBefore,
        accuracyAfter: c.accuracyAfter, bytes: c.bytes })),
    ];
    this.appendRecords(lines);
  }

  /** Appends records to metrics.jsonl, one JSON object per line. */
  appendRecords(lines: object[]): void {
    appendFileSync(join(this.dir, 'metrics.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  }

  writeSummary(summary: object): void {
    writeFileSync(join(this.dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  }
}

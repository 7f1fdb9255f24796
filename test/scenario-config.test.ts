import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkScenarioAgainstDataset, loadScenarioFile, parseScenario, ScenarioError } from '../shared/scenario-config.js';

const base = {
  name: 't',
  dataset: { name: 'fashion-mnist' },
  missions: { count: 3, classesPerClient: 2, shotsPerClass: 5 },
};
const tenClasses = new Map(Array.from({ length: 10 }, (_, c) => [c, 500]));

describe('scenario validation', () => {
  it('every shipped scenario is valid', () => {
    const s = loadScenarioFile('scenarios/fashion-mnist.yaml');
    expect(s.clients.count).toBe(4);
    expect(checkScenarioAgainstDataset(s, 10, tenClasses)).toHaveLength(10);
  });

  it('fills defaults', () => {
    const s = parseScenario(base);
    expect(s.clients).toEqual({ count: 4, mode: 'process', maxRestarts: 2 });
    expect(s.codec).toEqual({ uplink: 'f32', downlink: 'f32' });
    expect(s.seed).toBe(1);
  });

  it('names an unknown key, at any depth', () => {
    expect(() => parseScenario({ ...base, colour: 'red' })).toThrow(/^.*\n\s+colour: unknown key/m);
    expect(() => parseScenario({ ...base, missions: { ...base.missions, shots: 4 } })).toThrow(/missions\.shots: unknown key/);
  });

  it('names a key of the wrong type', () => {
    expect(() => parseScenario({ ...base, missions: { ...base.missions, shotsPerClass: 'ten' } })).toThrow(/missions\.shotsPerClass: .*expected number/);
    expect(() => parseScenario({ ...base, clients: { count: 0 } })).toThrow(/clients\.count/);
    expect(() => parseScenario({ ...base, codec: { uplink: 'zip' } })).toThrow(/codec\.uplink/);
  });

  it('names the key of an impossible split', () => {
    const s = parseScenario({ ...base, missions: { ...base.missions, classesPerClient: 11 } });
    expect(() => checkScenarioAgainstDataset(s, 10, tenClasses)).toThrow(/missions\.classesPerClient: 11 classes .* only 10 field classes/);
    const field = parseScenario({ ...base, missions: { ...base.missions, fieldClasses: [0, 12] } });
    expect(() => checkScenarioAgainstDataset(field, 10, tenClasses)).toThrow(/missions\.fieldClasses: class 12 does not exist/);
    const shots = parseScenario({ ...base, missions: { ...base.missions, shotsPerClass: 600 } });
    expect(() => checkScenarioAgainstDataset(shots, 10, tenClasses)).toThrow(/missions\.shotsPerClass/);
    expect(() => parseScenario({ ...base, faults: { crash: [{ client: 9, mission: 0 }] } })).toThrow(/faults\.crash: client 9 does not exist/);
  });

  it('reports YAML syntax errors and missing files clearly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'protofed-scenario-'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'name: [unclosed\n');
    expect(() => loadScenarioFile(bad)).toThrow(ScenarioError);
    expect(() => loadScenarioFile(bad)).toThrow(/bad\.yaml is not valid YAML/);
    expect(() => loadScenarioFile(join(dir, 'nope.yaml'))).toThrow(/cannot read scenario file .*nope\.yaml/);
  });
});

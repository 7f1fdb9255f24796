import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkScenarioAgainstDataset, loadScenarioFile, parseScenario, ScenarioError } from '../shared/scenario/scenario-config.js';

const base = {
  name: 't',
  dataset: { name: 'fashion-mnist' },
  missions: { count: 3, classesPerClient: 2, shotsPerClass: 5 },
};
const tenClasses = { classCount: 10, trainPerClass: new Map(Array.from({ length: 10 }, (_, c) => [c, 500])) };

describe('scenario validation', () => {
  it('every shipped scenario is valid', () => {
    const s = loadScenarioFile('scenarios/fashion-mnist.yaml');
    expect(s.clients.count).toBe(4);
    expect(checkScenarioAgainstDataset(s, tenClasses).field).toHaveLength(10);
    for (const file of readdirSync('scenarios').filter((f) => f.endsWith('.yaml'))) {
      expect(() => loadScenarioFile(join('scenarios', file)), file).not.toThrow();
    }
    const conv4 = loadScenarioFile('scenarios/glyphs.yaml');
    expect(conv4.backbone.name === 'conv4' && conv4.backbone.weights).toBe(resolve('data/models/glyphs-conv4'));
  });

  it('fills defaults', () => {
    const s = parseScenario(base);
    expect(s.clients).toEqual({ count: 4, mode: 'process', maxRestarts: 2, participation: 1, serveDataset: false });
    expect(s.backbone).toEqual({ name: 'pixels' });
    expect(s.backend).toBe('auto');
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
    expect(() => parseScenario({ ...base, pretrain: { filters: 0 } })).toThrow(/pretrain\.filters/);
    expect(() => parseScenario({ ...base, pretrain: { filters: 48.5 } })).toThrow(/pretrain\.filters/);
    expect(() => parseScenario({ ...base, codec: { uplink: 'zip' } })).toThrow(/codec\.uplink/);
    expect(() => parseScenario({ ...base, backbone: { name: 'conv4' } })).toThrow(/backbone\.weights/);
    expect(() => parseScenario({ ...base, backbone: { name: 'tfjs-model', url: 'm.json', input: { rows: 28, cols: 28, channels: 2 } } })).toThrow(/backbone\.input\.channels/);
  });

  it('names the key of an impossible split', () => {
    const s = parseScenario({ ...base, missions: { ...base.missions, classesPerClient: 11 } });
    expect(() => checkScenarioAgainstDataset(s, tenClasses)).toThrow(/missions\.classesPerClient: 11 classes .* only 10 field classes/);
    const field = parseScenario({ ...base, missions: { ...base.missions, fieldClasses: [0, 12] } });
    expect(() => checkScenarioAgainstDataset(field, tenClasses)).toThrow(/missions\.fieldClasses: class 12 does not exist/);
    const shots = parseScenario({ ...base, missions: { ...base.missions, shotsPerClass: 600 } });
    expect(() => checkScenarioAgainstDataset(shots, tenClasses)).toThrow(/missions\.shotsPerClass/);
    expect(() => parseScenario({ ...base, faults: { crash: [{ client: 9, mission: 0 }] } })).toThrow(/faults\.crash: client 9 does not exist/);
    const overlap = parseScenario({ ...base, dataset: { name: 'fashion-mnist', baseClasses: [0, 1] }, missions: { ...base.missions, fieldClasses: [1, 2, 3] } });
    expect(() => checkScenarioAgainstDataset(overlap, tenClasses)).toThrow(/missions\.fieldClasses: class 1 is also a base class/);
    const withBase = parseScenario({ ...base, dataset: { name: 'fashion-mnist', baseClasses: [0, 1, 2, 3, 4] } });
    expect(checkScenarioAgainstDataset(withBase, tenClasses)).toEqual({ base: [0, 1, 2, 3, 4], field: [5, 6, 7, 8, 9] });
    expect(checkScenarioAgainstDataset(parseScenario(base), { ...tenClasses, baseClasses: [9] }).field).not.toContain(9);
  });

  it('selects field classes by group and names a group that does not exist', () => {
    const groups = ['train', 'train', 'test', 'val', 'test', 'train', 'train', 'train', 'val', 'test'];
    const s = parseScenario({ ...base, missions: { ...base.missions, classesPerClient: 1, fieldGroups: ['test'] } });
    expect(checkScenarioAgainstDataset(s, { ...tenClasses, classGroups: groups }).field).toEqual([2, 4, 9]);
    const bad = parseScenario({ ...base, missions: { ...base.missions, fieldGroups: ['holdout'] } });
    expect(() => checkScenarioAgainstDataset(bad, { ...tenClasses, classGroups: groups })).toThrow(/missions\.fieldGroups: no class is in group "holdout"/);
    expect(() => checkScenarioAgainstDataset(bad, tenClasses)).toThrow(/missions\.fieldGroups: this dataset has no class groups/);
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

describe('link ranges', () => {
  it('take one number or a [min, max] range per value, and name a bad one', () => {
    const base = { name: 'x', dataset: { name: 'fashion-mnist' }, missions: { count: 1, classesPerClient: 1, shotsPerClass: 1 } };
    expect(parseScenario({ ...base, link: { bandwidthMbps: [1, 50], latencyMs: [10, 200], loss: 0.01 } }).link).toEqual({ bandwidthMbps: [1, 50], latencyMs: [10, 200], loss: 0.01 });
    expect(() => parseScenario({ ...base, link: { bandwidthMbps: [50, 1] } })).toThrow(/link\.bandwidthMbps/);
    expect(() => parseScenario({ ...base, link: { bandwidthMbps: 10, loss: [0, 1] } })).toThrow(/link\.loss/);
  });
});

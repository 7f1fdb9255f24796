import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';

export class ScenarioError extends Error {}

const positiveInt = z.number().int().min(1);

const scenarioSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().optional(),
  seed: z.number().int().min(0).default(1),
  dataset: z.strictObject({
    name: z.enum(['fashion-mnist']),
    /** A folder holding the dataset files; when absent, the system copy or the embedded subset is used. */
    dir: z.string().min(1).optional(),
  }),
  backbone: z.strictObject({ name: z.enum(['pixels']) }).default({ name: 'pixels' }),
  clients: z.strictObject({
    count: positiveInt.max(1024).default(4),
    mode: z.enum(['process']).default('process'),
    /** How often a client process that dies is replaced before the run fails. */
    maxRestarts: z.number().int().min(0).default(2),
  }).default({ count: 4, mode: 'process', maxRestarts: 2 }),
  missions: z.strictObject({
    /** The most missions to run; the run ends earlier when the field train images run out. */
    count: positiveInt,
    classesPerClient: positiveInt,
    shotsPerClass: positiveInt,
    /** Classes the clients learn; all the dataset's classes when absent. */
    fieldClasses: z.array(z.number().int().min(0)).min(1).optional(),
  }),
  codec: z.strictObject({
    uplink: z.enum(['f64', 'f32', 'f16', 'int8']).default('f32'),
    downlink: z.enum(['f64', 'f32', 'f16', 'int8']).default('f32'),
  }).default({ uplink: 'f32', downlink: 'f32' }),
  evaluation: z.strictObject({
    /** Test images per class to evaluate on; all of them when absent. */
    testPerClass: positiveInt.optional(),
  }).default({}),
  timeouts: z.strictObject({
    /** How long one mission phase may wait for its clients. */
    phaseMs: positiveInt.default(120_000),
    /** How long the coordinator waits for all clients to connect. */
    connectMs: positiveInt.default(60_000),
  }).default({ phaseMs: 120_000, connectMs: 60_000 }),
  faults: z.strictObject({
    /** Kill a client process once, when it receives the given mission (0-based), to exercise replacement. */
    crash: z.array(z.strictObject({ client: z.number().int().min(0), mission: z.number().int().min(0) })).default([]),
  }).default({ crash: [] }),
});

export type Scenario = z.infer<typeof scenarioSchema>;

/** Validates a parsed scenario object; errors name the offending key. */
export function parseScenario(raw: unknown, source = 'scenario'): Scenario {
  const result = scenarioSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const at = issue.path.join('.');
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((k) => `  ${at ? `${at}.` : ''}${k}: unknown key`).join('\n');
      }
      return `  ${at || '(top level)'}: ${issue.message}`;
    });
    throw new ScenarioError(`${source} is invalid:\n${lines.join('\n')}`);
  }
  const s = result.data;
  for (const fault of s.faults.crash) {
    if (fault.client >= s.clients.count) {
      throw new ScenarioError(`${source} is invalid:\n  faults.crash: client ${fault.client} does not exist (clients.count is ${s.clients.count})`);
    }
  }
  return s;
}

/** Reads and validates a YAML (or JSON) scenario file. */
export function loadScenarioFile(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ScenarioError(`cannot read scenario file ${path}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    const detail = err instanceof YAMLParseError ? err.message : String(err);
    throw new ScenarioError(`${path} is not valid YAML: ${detail}`);
  }
  return parseScenario(raw, path);
}

/**
 * Checks the parts of a scenario that depend on the dataset: class ids exist, and each mission
 * can be filled at all. Errors name the key.
 */
export function checkScenarioAgainstDataset(s: Scenario, classCount: number, trainPerClass: Map<number, number>, source = 'scenario'): number[] {
  const field = s.missions.fieldClasses ?? Array.from({ length: classCount }, (_, i) => i);
  const bad = field.filter((c) => c >= classCount);
  if (bad.length > 0) {
    throw new ScenarioError(`${source} is invalid:\n  missions.fieldClasses: class ${bad.join(', ')} does not exist (the dataset has classes 0..${classCount - 1})`);
  }
  if (new Set(field).size !== field.length) {
    throw new ScenarioError(`${source} is invalid:\n  missions.fieldClasses: a class is listed twice`);
  }
  if (s.missions.classesPerClient > field.length) {
    throw new ScenarioError(
      `${source} is invalid:\n  missions.classesPerClient: ${s.missions.classesPerClient} classes per client per mission, but there are only ${field.length} field classes`,
    );
  }
  const fillable = field.filter((c) => (trainPerClass.get(c) ?? 0) >= s.missions.shotsPerClass).length;
  if (fillable < s.missions.classesPerClient) {
    throw new ScenarioError(
      `${source} is invalid:\n  missions.shotsPerClass: ${s.missions.shotsPerClass} examples per class, but only ${fillable} field classes have that many training images`,
    );
  }
  return field;
}

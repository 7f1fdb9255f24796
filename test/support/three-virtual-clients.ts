import { runScenario } from '../../coordinator/run-scenario.js';
import { parseScenario, type Scenario } from '../../shared/scenario/scenario-config.js';
import { VirtualClients } from '../../simulation/virtual-clients.js';

/**
 * Three virtual clients on Fashion-MNIST pixels, six missions. A client whose updates are refused
 * or who leaves is not waited for long: each mission closes on a quorum of two at its deadline.
 */
export function threeClientScenario(name: string, seed: number, extra: Record<string, unknown> = {}): Scenario {
  return parseScenario({
    name,
    seed,
    dataset: { name: 'fashion-mnist', dir: 'embedded' },
    backbone: { name: 'pixels' },
    clients: { count: 3, mode: 'virtual' },
    missions: { count: 6, classesPerClient: 2, shotsPerClass: 10 },
    codec: { uplink: 'f32', downlink: 'f32' },
    evaluation: { testPerClass: 100 },
    timeouts: { phaseMs: 60_000, connectMs: 60_000, deadlineMs: 400, quorum: 0.6, drainMs: 500 },
    ...extra,
  });
}

/** Runs a scenario with its clients in this process. */
export function runVirtual(scenario: Scenario, options: Parameters<typeof runScenario>[1] = {}): ReturnType<typeof runScenario> {
  return runScenario(scenario, { launchers: { virtual: (ctx) => new VirtualClients(ctx) }, ...options });
}

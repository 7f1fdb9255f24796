import { EventEmitter } from 'node:events';
import { ClientNode } from '../client/client-node.js';
import { InMemoryCoordinatorLink } from '../client/coordinator-link.js';
import type { ClientLauncher, ClientLauncherEvents, LaunchContext } from '../coordinator/client-launcher.js';
import { dropsMission, stragglerDelay, poisonUpdate } from '../client/faults.js';

/**
 * `clients.mode: virtual`: every client is a ClientNode in this process, talking to the
 * coordinator through an in-memory channel that carries the same encoded frames as socket.io,
 * so byte counts match process mode exactly. Clients share the coordinator's embedding store, so
 * an image is embedded once for all of them. The same client code runs in every mode.
 *
 * @example
 * const result = await runScenario(scenario, { launchers: { virtual: (ctx) => new VirtualClients(ctx) } });
 */
export class VirtualClients extends EventEmitter<ClientLauncherEvents> implements ClientLauncher {
  private readonly running: Promise<void>[] = [];
  private readonly links: InMemoryCoordinatorLink[] = [];
  private stopping = false;

  constructor(private readonly context: LaunchContext) {
    super();
  }

  start(): void {
    const { clients, dial, keys, store, evaluationMemo } = this.context;
    for (const spec of clients) {
      const link = new InMemoryCoordinatorLink(dial);
      this.links.push(link);
      const node = new ClientNode({
        clientId: spec.clientId,
        token: keys.secretOf(spec.clientId),
        store,
        link,
        testPerClass: spec.config.testPerClass,
        evaluationMemo,
        holdUpdateMs: stragglerDelay(spec.config.stragglers, spec.config.seed ?? 0, spec.clientId),
        dropsMission: dropsMission(spec.config.dropoutProbability, spec.config.seed ?? 0, spec.clientId),
        poison: poisonUpdate(spec.config.byzantine),
        leaveAtMission: spec.config.leaveAtMission,
        log: (line) => this.context.stderr?.write(`${line}\n`),
      });
      this.running.push(node.run().catch((err: Error) => {
        if (!this.stopping) this.emit('failed', spec.clientId, `virtual client ${spec.clientId} failed: ${err.message}`);
      }));
    }
  }

  async stop(graceMs = 5000): Promise<void> {
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([Promise.all(this.running), timeout]);
    this.stopping = true;
    for (const link of this.links) link.close();
  }

  killAll(): void {
    this.stopping = true;
    for (const link of this.links) link.close();
  }
}

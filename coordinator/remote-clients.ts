import { EventEmitter } from 'node:events';
import type { ClientLauncher, ClientLauncherEvents } from './client-launcher.js';

/**
 * `clients.mode: remote`: the clients are started by someone else, on other hosts, with
 * `protofed client --connect URL --key-file FILE --id ID`. There is nothing to launch; the coordinator
 * waits for them (timeouts.connectMs) and a client that drops may rejoin with its id.
 */
export class RemoteClients extends EventEmitter<ClientLauncherEvents> implements ClientLauncher {
  /**
   * `connected`: clients connected now; `untold`: clients not yet told the run is over (cut off
   * when it ended: they are told when they reconnect, so the coordinator waits for them).
   */
  constructor(private readonly connected: () => number, private readonly untold: () => number = () => 0) {
    super();
  }

  start(): void {}

  /**
   * Gives the clients time to receive the shutdown message and disconnect by themselves, and one
   * cut off at the end time to reconnect and hear it (its reconnect delay is at most 2 s).
   */
  async stop(graceMs = 15_000): Promise<void> {
    const until = Date.now() + graceMs;
    while ((this.connected() > 0 || this.untold() > 0) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  }

  killAll(): void {}
}

import { EventEmitter } from 'node:events';
import type { ClientLauncher, ClientLauncherEvents } from './client-launcher.js';

/**
 * `clients.mode: remote`: the clients are started by someone else, on other hosts, with
 * `protofed client --connect URL --token T --id ID`. There is nothing to launch; the coordinator
 * waits for them (timeouts.connectMs) and a client that drops may rejoin with its id.
 */
export class RemoteClients extends EventEmitter<ClientLauncherEvents> implements ClientLauncher {
  constructor(private readonly connected: () => number) {
    super();
  }

  start(): void {}

  /** Gives the clients time to receive the shutdown message and disconnect by themselves. */
  async stop(graceMs = 5000): Promise<void> {
    const until = Date.now() + graceMs;
    while (this.connected() > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  }

  killAll(): void {}
}

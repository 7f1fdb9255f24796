import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { entryPoint } from '../shared/entry-points.js';
import type { ClientLauncher, ClientLauncherEvents, LaunchContext, LaunchedClient } from './client-launcher.js';

const clientEntry = entryPoint(import.meta.url, '../client/process-entry');

/**
 * Forks one process per client (`clients.mode: process`) and replaces a process that dies,
 * up to `maxRestarts` times per client. The replacement rejoins with the same id and resumes.
 *
 * @example
 * const spawner = new ProcessSpawner({ url, keys, clients, maxRestarts: 2 });
 * spawner.on('failed', (id, why) => abort(new Error(`${id}: ${why}`)));
 * spawner.start();
 */
export class ProcessSpawner extends EventEmitter<ClientLauncherEvents> implements ClientLauncher {
  private readonly children = new Map<string, ChildProcess>();
  private readonly restarts = new Map<string, number>();
  private stopping = false;

  constructor(private readonly o: Pick<LaunchContext, 'url' | 'keys' | 'clients' | 'maxRestarts' | 'stderr'>) {
    super();
  }

  start(): void {
    for (const spec of this.o.clients) this.spawn(spec, 0);
  }

  /** Processes alive now. */
  get alive(): number {
    return this.children.size;
  }

  /** Waits for every client to exit on its own (after a shutdown message), then kills stragglers. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    const exits = [...this.children.values()].map(
      (child) => new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
      }),
    );
    const timer = setTimeout(() => {
      for (const child of this.children.values()) child.kill('SIGKILL');
    }, graceMs);
    await Promise.all(exits);
    clearTimeout(timer);
  }

  private spawn(spec: LaunchedClient, attempt: number): void {
    // A crash fault fires in the first incarnation only, so the replacement can finish the run.
    const config = attempt === 0 ? spec.config : { ...spec.config, crashAtMission: undefined };
    const child = fork(clientEntry.file, [], {
      execArgv: clientEntry.execArgv,
      env: {
        ...process.env,
        PROTOFED_URL: this.o.url,
        // Its own key only, in its environment (readable by this user alone), never on a command line.
        PROTOFED_KEY: this.o.keys.secretOf(spec.clientId),
        PROTOFED_CLIENT_ID: spec.clientId,
        PROTOFED_CLIENT_CONFIG: JSON.stringify(config),
      },
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    child.stderr?.pipe(this.o.stderr ?? process.stderr, { end: false });
    this.children.set(spec.clientId, child);
    child.once('exit', (code, signal) => {
      if (this.children.get(spec.clientId) === child) this.children.delete(spec.clientId);
      if (this.stopping) return;
      const why = signal ? `client process ${spec.clientId} was killed by ${signal}` : `client process ${spec.clientId} exited with code ${code}`;
      const used = this.restarts.get(spec.clientId) ?? 0;
      if (used >= this.o.maxRestarts) {
        this.emit('failed', spec.clientId, `${why}, and it was already replaced ${used} time(s) (clients.maxRestarts: ${this.o.maxRestarts})`);
        return;
      }
      this.restarts.set(spec.clientId, used + 1);
      this.emit('restarted', spec.clientId, used + 1, why);
      this.spawn(spec, used + 1);
    });
  }

  /** Kills every client at once (used when the run fails). */
  killAll(): void {
    this.stopping = true;
    for (const child of this.children.values()) child.kill('SIGKILL');
  }
}

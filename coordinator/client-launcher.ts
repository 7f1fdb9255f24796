import type { EventEmitter } from 'node:events';
import type { ProcessClientConfig } from '../shared/scenario/client-config.js';
import type { EmbeddingStore } from '../shared/embedding/embedding-store.js';
import type { ChannelEnd } from '../shared/protocol/in-memory-channel.js';
import type { ClientKeys } from '../shared/protocol/client-keys.js';
import type { EvaluationMemo } from '../shared/learning/evaluation-memo.js';

export interface LaunchedClient {
  clientId: string;
  config: ProcessClientConfig;
}

/** Everything a launcher needs to bring a run's clients to the coordinator. */
export interface LaunchContext {
  /** The coordinator's socket.io URL (process clients). */
  url: string;
  /** Opens an in-memory connection to the coordinator (virtual clients). */
  dial: () => ChannelEnd;
  /** Each client's key: a launcher hands every client its own. */
  keys: ClientKeys;
  clients: LaunchedClient[];
  maxRestarts: number;
  /** The coordinator's embedding store: virtual clients in the same process share it. */
  store: EmbeddingStore;
  /** Evaluations shared by everything in this process that evaluates (virtual clients). */
  evaluationMemo: EvaluationMemo;
  stderr?: NodeJS.WritableStream | undefined;
}

export interface ClientLauncherEvents {
  restarted: [clientId: string, attempt: number, why: string];
  /** A client died and may not be replaced again: the run cannot finish. */
  failed: [clientId: string, why: string];
}

/** Starts and stops a run's clients: forked processes, or virtual clients in this process. */
export interface ClientLauncher extends EventEmitter<ClientLauncherEvents> {
  start(): void;
  /** Waits for the clients to finish after the coordinator's shutdown message. */
  stop(graceMs?: number): Promise<void>;
  /** Ends every client at once (the run failed). */
  killAll(): void;
}

export type ClientLauncherFactory = (context: LaunchContext) => ClientLauncher;

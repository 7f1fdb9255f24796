import { parentPort, workerData } from 'node:worker_threads';
import { ClientShard, type ShardConfig } from './client-shard.js';
import { packFrames, transferables } from './frame-batch.js';
import { serializeTable, type ShardReply, type ShardRequest } from './shard-handle.js';

const shard = new ClientShard(workerData as ShardConfig);

parentPort!.on('message', (request: ShardRequest) => {
  try {
    if (request.kind === 'learn') {
      const updates = packFrames(shard.learn(request.clients, request.missions, request.codebookOf, request.codebook));
      parentPort!.postMessage({ id: request.id, ok: true, updates } satisfies ShardReply, transferables(updates));
    } else if (request.kind === 'deliver') {
      shard.deliver(request.clients, request.acks, request.tableOf, request.tables);
      parentPort!.postMessage({ id: request.id, ok: true } satisfies ShardReply);
    } else {
      parentPort!.postMessage({ id: request.id, ok: true, table: serializeTable(shard.held(request.client)) } satisfies ShardReply);
    }
  } catch (err) {
    parentPort!.postMessage({ id: request.id, ok: false, error: (err as Error).message } satisfies ShardReply);
  }
});

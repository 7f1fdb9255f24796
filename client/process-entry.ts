/**
 * Entry point of a client process forked by the coordinator (`clients.mode: process`).
 * Everything it needs comes through the environment; see coordinator/process-spawner.ts.
 */
import { loadDataset } from '../shared/datasets/dataset-registry.js';
import { createBackbone } from '../shared/embedding/backbone-registry.js';
import { EmbeddingStore } from '../shared/embedding/embedding-store.js';
import { dropsMission, stragglerDelay, poisonUpdate } from './faults.js';
import type { ProcessClientConfig } from '../shared/scenario/client-config.js';
import { ClientNode } from './client-node.js';
import { SocketCoordinatorLink } from './coordinator-link.js';


function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is not set; this entry point is started by the coordinator`);
  return v;
}

// A client whose coordinator process is gone has nothing left to do.
process.on('disconnect', () => {
  process.stderr.write(`[${process.env.PROTOFED_CLIENT_ID ?? 'client'}] the coordinator process went away; exiting\n`);
  process.exit(3);
});

async function main(): Promise<void> {
  const url = required('PROTOFED_URL');
  const token = required('PROTOFED_KEY');
  const clientId = required('PROTOFED_CLIENT_ID');
  const config = JSON.parse(required('PROTOFED_CLIENT_CONFIG')) as ProcessClientConfig;
  const data = loadDataset(config.dataset);
  const { backbone } = await createBackbone(config.backbone, { rows: data.train.rows, cols: data.train.cols, channels: data.train.channels }, config.backend);
  const store = new EmbeddingStore(backbone, data, { cacheDir: config.cacheDir });
  const node = new ClientNode({
    clientId,
    token,
    store,
    link: new SocketCoordinatorLink(url),
    testPerClass: config.testPerClass,
    holdUpdateMs: stragglerDelay(config.stragglers, config.seed ?? 0, clientId),
    dropsMission: dropsMission(config.dropoutProbability, config.seed ?? 0, clientId),
    poison: poisonUpdate(config.byzantine),
    leaveAtMission: config.leaveAtMission,
    onMission: (mission) => {
      if (mission === config.crashAtMission) {
        process.stderr.write(`[${clientId}] fault injection: crashing at mission ${mission}\n`);
        process.exit(70);
      }
    },
  });
  await node.run();
  store.close();
  backbone.dispose();
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`[${process.env.PROTOFED_CLIENT_ID ?? 'client'}] ${err.message}\n`);
    process.exit(1);
  },
);

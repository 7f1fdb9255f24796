import { encodeEmbeddingRows } from '../protocol/update-blocks.js';
import { statisticsStrategy } from './statistics.js';
import type { Strategy } from './strategy.js';
import { oneRowPerExample } from './update-checks.js';

/** share-embeddings: every example's embedding goes up (one class-block row each, count 1). */
export const shareEmbeddings: Strategy = {
  ...statisticsStrategy,
  name: 'share-embeddings',
  keepsRows: true,
  updateEntries: 'examples',
  checkUpdate: oneRowPerExample,
  encodeUpdate: (c) => encodeEmbeddingRows([...c.rows].sort((a, b) => a.classId - b.classId), c.delta.dim, c.uplink, c.reference),
};

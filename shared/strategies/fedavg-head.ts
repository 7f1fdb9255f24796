import { PrototypeTable } from '../learning/prototype-table.js';
import { encodeUpdateClasses } from '../protocol/update-blocks.js';
import { headRowsOf, predictLinearOnTensors, trainHead } from './linear-head.js';
import type { Strategy, TrainingContext } from './strategy.js';
import { headRowsOfKnownClasses } from './update-checks.js';

/**
 * fedavg-head: each client trains a linear head (a row of dim weights and a bias per class) by
 * SGD on its mission's embeddings, starting from the averaged head it holds; the coordinator
 * averages each round's heads, weighted by the clients' example counts (FedAvg). It classifies
 * by the highest score.
 */
export const fedavgHead: Strategy = {
  name: 'fedavg-head',
  tableDim: (dim) => dim + 1,
  merge: 'round-average',
  learner: 'clients',
  keepsRows: true,
  updateEntries: 'classes',
  syncOnly: 'averages each mission\'s heads',
  population: false,
  judgedBy: 'global table',
  train: trainOnMission,
  checkUpdate: headRowsOfKnownClasses,
  encodeUpdate: (c) => {
    const head = c.trained!;
    return encodeUpdateClasses(head, c.uplink, (classId) => {
      const row = head.prototype(classId)!;
      const ref = c.reference(classId);
      if (ref) for (let d = 0; d < row.length; d++) row[d]! -= ref[d]!;
      return row;
    });
  },
  // Its view is the head it trained, until the averaged one arrives.
  view: (c) => c.trained ?? c.held,
  classify: (table, queries, rows, dim) => predictLinearOnTensors(queries, rows, headRowsOf(table), dim),
};

/** SGD on the mission's examples, from the held head, over every class known so far; each row counts this client's examples. */
function trainOnMission(c: TrainingContext): PrototypeTable {
  const { dim } = c;
  const n = c.rows.reduce((k, r) => k + r.embeddings.length / dim, 0);
  const embeddings = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  let at = 0;
  for (const r of c.rows) {
    embeddings.set(r.embeddings, at * dim);
    labels.fill(r.classId, at, at + r.embeddings.length / dim);
    at += r.embeddings.length / dim;
  }
  const classes = [...new Set([...c.classIds, ...labels])].sort((a, b) => a - b);
  const trained = trainHead(headRowsOf(c.held), classes, embeddings, labels, dim, { ...c.options, seed: `${c.clientId}:${c.mission}` });
  const head = new PrototypeTable(dim + 1);
  for (const [classId, row] of trained) head.setMean(classId, n, row);
  return head;
}

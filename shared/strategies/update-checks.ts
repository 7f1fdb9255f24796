import type { AssignedWork, UpdateClasses } from './strategy.js';

/**
 * What a client's update may hold, given the work the coordinator assigned it: each check
 * returns the first problem, or undefined. The coordinator applies nothing that fails.
 */

/** One entry per assigned class, counting exactly its assigned examples (protofed, fedrecon-reference). */
export function sameClassesAndCounts(block: UpdateClasses, work: AssignedWork): string | undefined {
  if (block.rows) return 'a block of rows (flag 0x02), but this strategy sends one entry per class';
  if (block.classIds.length !== work.counts.size) {
    return `${block.classIds.length} classes, but ${work.counts.size} were assigned in mission ${work.mission}`;
  }
  for (let i = 0; i < block.classIds.length; i++) {
    const problem = assignedCount(block.classIds[i]!, block.counts[i]!, work);
    if (problem) return `classes[${i}]: ${problem}`;
  }
  return undefined;
}

/** One row per assigned example, each with count 1 (share-embeddings). */
export function oneRowPerExample(block: UpdateClasses, work: AssignedWork): string | undefined {
  if (!block.rows) return 'one entry per class, but this strategy sends a block of rows (flag 0x02)';
  const rows = new Map<number, number>();
  for (let i = 0; i < block.classIds.length; i++) {
    if (block.counts[i] !== 1) return `rows[${i}] (class ${block.classIds[i]}): count ${block.counts[i]}, but each row is one example (count 1)`;
    rows.set(block.classIds[i]!, (rows.get(block.classIds[i]!) ?? 0) + 1);
  }
  if (rows.size !== work.counts.size) return `rows of ${rows.size} classes, but ${work.counts.size} were assigned in mission ${work.mission}`;
  for (const [classId, n] of rows) {
    const problem = assignedCount(classId, n, work);
    if (problem) return `rows: ${problem}`;
  }
  return undefined;
}

/**
 * A head row for every assigned class and perhaps other known ones, each weighted by the
 * client's examples in the mission (fedavg-head).
 */
export function headRowsOfKnownClasses(block: UpdateClasses, work: AssignedWork): string | undefined {
  if (block.rows) return 'a block of rows (flag 0x02), but this strategy sends one head row per class';
  const sent = new Set(block.classIds);
  for (const classId of work.counts.keys()) if (!sent.has(classId)) return `no head row for class ${classId}, which was assigned in mission ${work.mission}`;
  for (let i = 0; i < block.classIds.length; i++) {
    const classId = block.classIds[i]!;
    if (!work.counts.has(classId) && !work.known.has(classId)) return `classes[${i}]: class ${classId} is not known in mission ${work.mission}`;
    if (block.counts[i] !== work.total) return `classes[${i}] (class ${classId}): weight ${block.counts[i]}, but the client learned ${work.total} examples in mission ${work.mission}`;
  }
  return undefined;
}

/** Strategies whose clients send nothing. */
export function noUpdates(strategy: string): (block: UpdateClasses, work: AssignedWork) => string {
  return () => `strategy ${strategy} takes no updates from clients`;
}

function assignedCount(classId: number, count: number, work: AssignedWork): string | undefined {
  const assigned = work.counts.get(classId);
  if (assigned === undefined) return `class ${classId} was not assigned in mission ${work.mission}`;
  if (count !== assigned) return `class ${classId}: count ${count}, but ${assigned} examples were assigned in mission ${work.mission}`;
  return undefined;
}

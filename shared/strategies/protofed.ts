import { encodeDeltaClasses, statisticsStrategy } from './statistics.js';
import type { Strategy } from './strategy.js';

/** protofed: each class's new examples as their mean and count (a delta); the coordinator adds them. */
export const protofed: Strategy = {
  ...statisticsStrategy,
  name: 'protofed',
  population: true,
  encodeUpdate: (c) => encodeDeltaClasses(c, (classId) => c.delta.prototype(classId)!),
};

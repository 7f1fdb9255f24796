import { statisticsStrategy } from './statistics.js';
import type { Strategy } from './strategy.js';
import { noUpdates } from './update-checks.js';

/** centralized: clients send no update; the coordinator pools their raw data and learns it itself (the upper bound). */
export const centralized: Strategy = {
  ...statisticsStrategy,
  name: 'centralized',
  learner: 'coordinator',
  checkUpdate: noUpdates('centralized'),
  syncOnly: 'pools each mission\'s data at the coordinator',
  encodeUpdate: () => {
    throw new Error('centralized clients send no update');
  },
};

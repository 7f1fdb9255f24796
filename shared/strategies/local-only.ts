import { statisticsStrategy } from './statistics.js';
import type { Strategy } from './strategy.js';
import { noUpdates } from './update-checks.js';

/** local-only: nothing is shared; each client knows only what it learned (the lower bound). */
export const localOnly: Strategy = {
  ...statisticsStrategy,
  name: 'local-only',
  learner: 'nobody',
  checkUpdate: noUpdates('local-only'),
  judgedBy: 'clients',
  encodeUpdate: () => {
    throw new Error('local-only clients send no update');
  },
};

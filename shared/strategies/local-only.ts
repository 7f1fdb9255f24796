import { statisticsStrategy } from './statistics.js';
import type { Strategy } from './strategy.js';

/** local-only: nothing is shared; each client knows only what it learned (the lower bound). */
export const localOnly: Strategy = {
  ...statisticsStrategy,
  name: 'local-only',
  learner: 'nobody',
  judgedBy: 'clients',
  encodeUpdate: () => {
    throw new Error('local-only clients send no update');
  },
};

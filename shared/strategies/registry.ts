import { STRATEGIES, type StrategyName } from '../protocol/messages.js';
import { centralized } from './centralized.js';
import { fedavgHead } from './fedavg-head.js';
import { fedreconReference } from './fedrecon-reference.js';
import { localOnly } from './local-only.js';
import { protofed } from './protofed.js';
import { shareEmbeddings } from './share-embeddings.js';
import type { Strategy } from './strategy.js';

const registry: Record<StrategyName, Strategy> = {
  protofed,
  'fedrecon-reference': fedreconReference,
  'share-embeddings': shareEmbeddings,
  centralized,
  'fedavg-head': fedavgHead,
  'local-only': localOnly,
};

/**
 * The strategy of a name (the names are the protocol's STRATEGIES).
 *
 * @example
 * strategyNamed('protofed').merge; // 'sum'
 */
export function strategyNamed(name: StrategyName): Strategy {
  const strategy = registry[name];
  if (!strategy) throw new Error(`unknown strategy "${name}"; known: ${STRATEGIES.join(', ')}`);
  return strategy;
}

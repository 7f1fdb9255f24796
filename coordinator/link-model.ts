import type { ByteTally } from '../shared/protocol/byte-accounting.js';
import { SeededRng } from '../shared/learning/rng.js';

/** A client's network link, for turning counted bytes into simulated transfer time. */
export interface LinkModel {
  /** Bandwidth in megabits per second (both directions). */
  bandwidthMbps: number;
  /** One-way latency per message, in milliseconds. */
  latencyMs: number;
  /** Probability that a message is lost and sent again (0 ≤ loss < 1). */
  loss: number;
}

/**
 * Seconds a client's messages would take over its link: each message pays the latency once per
 * attempt, and its frame bytes (what the socket carries) at the bandwidth; a loss rate p makes each message take 1 / (1 − p)
 * attempts on average. Up and down share the time (half-duplex, the cautious choice).
 *
 * @example
 * transferSeconds({ messages: 3, payloadBytes: 0, encodedBytes: 29_980, frameBytes: 30_000 }, { bandwidthMbps: 10, latencyMs: 40, loss: 0 });
 * // 3 × 0.04 + 240 000 bits / 10 Mbit/s = 0.144 s
 */
export function transferSeconds(traffic: ByteTally, link: LinkModel): number {
  const attempts = 1 / (1 - link.loss);
  return attempts * (traffic.messages * link.latencyMs / 1000 + (traffic.frameBytes * 8) / (link.bandwidthMbps * 1e6));
}

/** A link value in a scenario: one number for every client, or a [min, max] range drawn per client. */
export type LinkValue = number | [number, number];

export interface LinkSpec {
  bandwidthMbps: LinkValue;
  latencyMs: LinkValue;
  loss: LinkValue;
}

/**
 * Each client's own link, drawn once from the spec with the run's seed: a bandwidth or latency
 * range log-uniformly (links span orders of magnitude), a loss range uniformly.
 *
 * @example
 * linkFor({ bandwidthMbps: [1, 100], latencyMs: 40, loss: 0 }, 7, 'c3'); // { bandwidthMbps: 12.4, latencyMs: 40, loss: 0 }
 */
export function linkFor(spec: LinkSpec, seed: number, clientId: string): LinkModel {
  const rng = new SeededRng(seed).fork(`link-${clientId}`);
  const logUniform = (v: LinkValue): number => (typeof v === 'number' ? v : Math.exp(Math.log(v[0]) + rng.next() * (Math.log(v[1]) - Math.log(v[0]))));
  const uniform = (v: LinkValue): number => (typeof v === 'number' ? v : v[0] + rng.next() * (v[1] - v[0]));
  return { bandwidthMbps: logUniform(spec.bandwidthMbps), latencyMs: logUniform(spec.latencyMs), loss: uniform(spec.loss) };
}

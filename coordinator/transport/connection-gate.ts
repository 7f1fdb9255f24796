/** How many connections may wait for their hello at once. */
export interface ConnectionLimits {
  /** Connections that have not said a valid hello yet, in all (default 64). */
  pending: number;
  /** The same, from one address (default 8). */
  pendingPerAddress: number;
}

export const DEFAULT_CONNECTION_LIMITS: Readonly<ConnectionLimits> = Object.freeze({ pending: 64, pendingPerAddress: 8 });

/**
 * Counts the connections that have not authenticated, in all and by address, and turns new
 * ones away past the limits; a connection leaves the count when it authenticates or closes.
 *
 * @example
 * if (!gate.admits(address)) refuse();
 * gate.opened(id, address); ... gate.settled(id);
 */
export class ConnectionGate {
  private readonly pending = new Map<string, string>();
  private readonly byAddress = new Map<string, number>();
  /** Connections turned away so far. */
  refused = 0;

  constructor(private readonly limits: ConnectionLimits = DEFAULT_CONNECTION_LIMITS) {}

  /** Whether a new connection from `address` may open now. */
  admits(address: string | undefined): boolean {
    const ok = this.pending.size < this.limits.pending && (this.byAddress.get(address ?? '') ?? 0) < this.limits.pendingPerAddress;
    if (!ok) this.refused++;
    return ok;
  }

  opened(id: string, address: string | undefined): void {
    if (this.pending.has(id)) return;
    const a = address ?? '';
    this.pending.set(id, a);
    this.byAddress.set(a, (this.byAddress.get(a) ?? 0) + 1);
  }

  /** The connection authenticated or closed: it no longer counts. */
  settled(id: string): void {
    const a = this.pending.get(id);
    if (a === undefined) return;
    this.pending.delete(id);
    const n = (this.byAddress.get(a) ?? 1) - 1;
    if (n === 0) this.byAddress.delete(a);
    else this.byAddress.set(a, n);
  }

  get pendingCount(): number {
    return this.pending.size;
  }
}

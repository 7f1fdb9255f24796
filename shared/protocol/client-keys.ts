import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { PROTOCOL_LIMITS } from './messages.js';

/**
 * One secret per client id: a client proves who it is with its own secret, so a client can only
 * speak as itself. The file form is one line per client, `<id> <secret>`; `#` starts a comment.
 *
 * @example
 * const keys = ClientKeys.generate(['c0', 'c1']);
 * writeFileSync('run.keys', keys.format(), { mode: 0o600 });
 * ClientKeys.parse(readFileSync('run.keys', 'utf8')).verify('c0', secret); // true
 */
export class ClientKeys {
  /** A stand-in compared against when an id is unknown, so that timing does not tell which ids exist. */
  private readonly decoy = digest(randomBytes(32).toString('base64url'));

  private constructor(private readonly secrets: ReadonlyMap<string, Buffer>) {}

  /** Fresh random secrets (32 bytes each) for these ids. */
  static generate(clientIds: readonly string[]): ClientKeys {
    return ClientKeys.from(clientIds.map((id) => [id, randomBytes(32).toString('base64url')]));
  }

  static from(entries: Iterable<readonly [clientId: string, secret: string]>): ClientKeys {
    const secrets = new Map<string, Buffer>();
    for (const [id, secret] of entries) {
      checkId(id);
      checkSecret(id, secret);
      if (secrets.has(id)) throw new Error(`client id "${id}" has two keys`);
      secrets.set(id, Buffer.from(secret, 'utf8'));
    }
    return new ClientKeys(secrets);
  }

  /** Reads the file form; the error names the first bad line. */
  static parse(text: string, source = 'the keys file'): ClientKeys {
    const entries: [string, string][] = [];
    text.split('\n').forEach((raw, i) => {
      const line = raw.replace(/#.*/, '').trim();
      if (line === '') return;
      const parts = line.split(/\s+/);
      if (parts.length !== 2) throw new Error(`${source}, line ${i + 1}: expected "<client id> <secret>"`);
      entries.push([parts[0]!, parts[1]!]);
    });
    try {
      const keys = ClientKeys.from(entries);
      if (keys.size === 0) throw new Error('it holds no keys');
      return keys;
    } catch (err) {
      throw new Error(`${source}: ${(err as Error).message}`);
    }
  }

  get size(): number {
    return this.secrets.size;
  }

  clientIds(): string[] {
    return [...this.secrets.keys()];
  }

  has(clientId: string): boolean {
    return this.secrets.has(clientId);
  }

  /** The secret of one client (to hand to a process the coordinator starts itself). */
  secretOf(clientId: string): string {
    const secret = this.secrets.get(clientId);
    if (!secret) throw new Error(`no key for client "${clientId}"`);
    return secret.toString('utf8');
  }

  /** Whether `secret` is this client's, compared in constant time (whether or not the id exists). */
  verify(clientId: unknown, secret: unknown): boolean {
    if (typeof clientId !== 'string' || typeof secret !== 'string') return false;
    const known = this.secrets.get(clientId);
    const expected = known ? digest(known) : this.decoy;
    return timingSafeEqual(digest(secret), expected) && known !== undefined;
  }

  /** The file form, with a header that says what it is. */
  format(): string {
    const lines = [...this.secrets].map(([id, secret]) => `${id} ${secret.toString('utf8')}`);
    return `# protofed client keys: "<client id> <secret>" per line. Keep this file private; give each client its own line.\n${lines.join('\n')}\n`;
  }
}

/**
 * The secret a client reads for itself: a file with only its secret, or a keys file (its own
 * line is taken).
 */
export function clientSecretFrom(text: string, clientId: string, source: string): string {
  const lines = text.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter((l) => l !== '');
  if (lines.length === 1 && !/\s/.test(lines[0]!)) {
    checkSecret(clientId, lines[0]!, source);
    return lines[0]!;
  }
  const keys = ClientKeys.parse(text, source);
  if (!keys.has(clientId)) throw new Error(`${source} has no key for client "${clientId}"`);
  return keys.secretOf(clientId);
}

/** Client ids as the protocol allows them. */
export function checkId(id: string): void {
  if (id.length < 1 || id.length > PROTOCOL_LIMITS.maxIdLength || !/^[A-Za-z0-9_.-]+$/.test(id)) {
    throw new Error(`"${id}" is not a client id (1–${PROTOCOL_LIMITS.maxIdLength} characters from A–Z a–z 0–9 _ . -)`);
  }
}

function checkSecret(clientId: string, secret: string, source?: string): void {
  if (secret.length < 16 || secret.length > 256 || /\s/.test(secret)) {
    throw new Error(`${source ? `${source}: ` : ''}the key of client "${clientId}" must be 16–256 characters without spaces`);
  }
}

function digest(secret: string | Buffer): Buffer {
  return createHash('sha256').update(secret).digest();
}

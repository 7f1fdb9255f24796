/**
 * A userspace TCP proxy for network tests (this kernel has no netem): it forwards each
 * connection to a target, delays every chunk by a fixed latency in both directions (order kept),
 * and cuts connections at random, so that clients must reconnect for real.
 *
 *   node --import tsx test/support/fault-proxy.ts LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS CUTS SEED
 *
 * CUTS connections are cut in all, each after a random 0.5–2.5 s of life. Prints "ready" once listening.
 */
import { createServer, connect, type Socket } from 'node:net';
import { SeededRng } from '../../shared/learning/rng.js';

const [listenPort, targetHost, targetPort, delayMs, cuts, seed] = process.argv.slice(2);
const delay = Number(delayMs);
const rng = new SeededRng(Number(seed));
let cutsLeft = Number(cuts);

function delayedPipe(from: Socket, to: Socket): void {
  from.on('data', (chunk) => {
    setTimeout(() => {
      if (!to.destroyed) to.write(chunk);
    }, delay);
  });
}

const server = createServer((client) => {
  const upstream = connect(Number(targetPort), targetHost);
  delayedPipe(client, upstream);
  delayedPipe(upstream, client);
  const close = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
  if (cutsLeft > 0) {
    cutsLeft--;
    setTimeout(close, 500 + rng.next() * 2000);
  }
});
server.listen(Number(listenPort), '127.0.0.1', () => process.stdout.write('ready\n'));

import { copyFileSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gunzipSync, gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { describe, expect, it } from 'vitest';
import { NOT_AUTHENTICATED } from '../coordinator/transport/coordinator-server.js';
import { PROTOCOL_VERSION } from '../shared/protocol/messages.js';
import { protofedParser } from '../shared/protocol/socket-parser.js';
import { decodeMessage, encodeMessage } from '../shared/protocol/wire-format.js';
import { generate } from 'selfsigned';
import { runRemoteClient } from '../client/remote-client.js';
import { runScenario } from '../coordinator/run-scenario.js';
import { ClientKeys } from '../shared/protocol/client-keys.js';
import { parseScenario } from '../shared/scenario/scenario-config.js';
import { VirtualClients } from '../simulation/virtual-clients.js';

/** A learned backbone: remote clients fetch the model from the coordinator, over TLS too. */
function scenario(mode: 'remote' | 'virtual') {
  return parseScenario({
    name: 'tls-fashion-mnist',
    seed: 5,
    dataset: { name: 'fashion-mnist', dir: 'embedded', baseClasses: [0, 1, 2, 3, 4] },
    backbone: { name: 'conv4', weights: join(process.cwd(), 'data/models/fashion-mnist-conv4') },
    clients: { count: 2, mode, maxRestarts: 0 },
    missions: { count: 4, classesPerClient: 2, shotsPerClass: 8 },
    codec: { uplink: 'int8', downlink: 'int8' },
    evaluation: { testPerClass: 50 },
    timeouts: { phaseMs: 60_000, connectMs: 60_000 },
  });
}

/** The shipped Fashion-MNIST subset with one test pixel changed. */
function alteredCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'protofed-copy-'));
  for (const f of readdirSync('data/fashion-mnist-subset')) copyFileSync(join('data/fashion-mnist-subset', f), join(dir, f));
  const file = join(dir, 't10k-images-idx3-ubyte.gz');
  const images = gunzipSync(readFileSync(file));
  images[16 + 500]! ^= 0xff;
  writeFileSync(file, gzipSync(images));
  return dir;
}

/** A certificate for the loopback address, made by a library (selfsigned), as a user would make one. */
async function loopbackCertificate(): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: 'commonName', value: 'protofed test coordinator' }], {
    keyType: 'ec', algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] }],
  });
  return { cert: pems.cert, key: pems.private };
}

describe('a remote run over TLS', () => {
  it('clients that trust the coordinator\'s certificate run over https/wss and end with the table of the plain run; one that does not is stopped', async () => {
    const tls = await loopbackCertificate();
    const keys = ClientKeys.generate(['c0', 'c1']);
    const quiet = { log: () => {} };
    let untrusting: Promise<unknown> | undefined;
    let otherCopy: Promise<unknown> | undefined;
    const clients: Promise<void>[] = [];
    const secure = await runScenario(scenario('remote'), {
      keys, tls,
      onListening: (url) => {
        expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
        untrusting = runRemoteClient({ url, token: keys.secretOf('c0'), clientId: 'c0', dataDir: 'embedded', ...quiet }).then(
          () => 'joined', (err: Error) => err.message);
        // A client whose copy of the dataset differs in one pixel is stopped before it joins.
        otherCopy = runRemoteClient({ url, token: keys.secretOf('c1'), clientId: 'c1', ca: tls.cert, dataDir: alteredCopy(), ...quiet }).then(
          () => 'joined', (err: Error) => err.message);
        for (const id of ['c0', 'c1']) clients.push(runRemoteClient({ url, token: keys.secretOf(id), clientId: id, ca: tls.cert, dataDir: 'embedded', ...quiet }));
      },
    });
    await Promise.all(clients);
    expect(await untrusting).toMatch(/cannot reach the coordinator at https:.*(self-signed|certificate)/i);
    expect(await otherCopy).toMatch(/this host's fashion-mnist is not the coordinator's copy: the coordinator has 5,000 train \/ 1,000 test images \(sha256 [0-9a-f]{16}…\), this host 5,000 train \/ 1,000 test images/);

    const plain = await runScenario(scenario('virtual'), { launchers: { virtual: (ctx) => new VirtualClients(ctx) } });
    expect(secure.summary.tableChecksum).toBe(plain.summary.tableChecksum);
    expect(secure.summary.missions).toBe(4);
    // The TLS records are on the wire: more bytes than the frames they carry.
    expect(secure.summary.wireBytesUp!).toBeGreaterThan(secure.summary.frameBytesUp);
    // Both trusting clients fetched over https the setup, model.json (twice: once to read its
    // format) and the weights; the one with another copy only the setup; the untrusting one
    // nothing. All counted as setup traffic.
    const setup = secure.summary.bytesByType.down.setup!;
    expect(setup.messages).toBe(9);
    expect(setup.encodedBytes).toBeGreaterThan(2 * statSync(join(process.cwd(), 'data/models/fashion-mnist-conv4/weights.bin')).size);
  }, 120_000);
});

describe('mutual TLS', () => {
  it('clients present certificates of the run\'s authority whose name is their id; one with another\'s certificate, or none, is refused', async () => {
    // An authority of the run, and certificates it signs: the coordinator's and one per client.
    const ca = await generate([{ name: 'commonName', value: 'protofed test CA' }], {
      keyType: 'ec', algorithm: 'sha256', extensions: [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, digitalSignature: true, critical: true }],
    });
    const signer = { key: ca.private, cert: ca.cert };
    const server = await generate([{ name: 'commonName', value: 'coordinator' }], {
      keyType: 'ec', algorithm: 'sha256', ca: signer, extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
    });
    const client = async (id: string) => {
      const pems = await generate([{ name: 'commonName', value: id }], { keyType: 'ec', algorithm: 'sha256', ca: signer });
      return { cert: pems.cert, key: pems.private };
    };
    const certs = { c0: await client('c0'), c1: await client('c1') };
    const keys = ClientKeys.generate(['c0', 'c1']);
    const quiet = { log: () => {} };
    let impostor: Promise<string> | undefined;
    let anonymous: Promise<string> | undefined;
    let helloAsAnother: Promise<string> | undefined;
    const joined: Promise<void>[] = [];
    const secure = await runScenario(scenario('remote'), {
      keys, tls: { cert: server.cert, key: server.private, clientCa: ca.cert },
      onListening: (url) => {
        const base = { url, ca: ca.cert, dataDir: 'embedded', ...quiet };
        // c1's key and id with c0's certificate: the certificate does not name it.
        impostor = runRemoteClient({ ...base, token: keys.secretOf('c1'), clientId: 'c1', clientCertificate: certs.c0 }).then(() => 'joined', (err: Error) => err.message);
        anonymous = runRemoteClient({ ...base, token: keys.secretOf('c0'), clientId: 'c0' }).then(() => 'joined', (err: Error) => err.message);
        // Straight to socket.io, past the setup: a hello as c1, with c1's key, over c0's certificate.
        helloAsAnother = new Promise((resolve) => {
          const socket = io(url, { transports: ['websocket'], reconnection: false, parser: protofedParser, ca: ca.cert, ...certs.c0 });
          socket.on('connect', () => socket.emit('hello', encodeMessage({
            v: PROTOCOL_VERSION, clientId: 'c1', token: keys.secretOf('c1'), codecs: ['int8'], dim: 64, modelHash: 'x', tableVersion: 0, codebook: '',
          })));
          socket.on('refused', (f: Uint8Array) => {
            resolve(String(decodeMessage(f).reason));
            socket.disconnect();
          });
          socket.on('connect_error', (err) => resolve(`connect error: ${err.message}`));
        });
        for (const id of ['c0', 'c1'] as const) joined.push(runRemoteClient({ ...base, token: keys.secretOf(id), clientId: id, clientCertificate: certs[id] }));
      },
    });
    await Promise.all(joined);
    expect(await impostor).toMatch(/refused this client's key/);
    expect(await anonymous).toMatch(/cannot reach the coordinator at https:/);
    expect(await helloAsAnother).toBe(NOT_AUTHENTICATED);
    const plain = await runScenario(scenario('virtual'), { launchers: { virtual: (ctx) => new VirtualClients(ctx) } });
    expect(secure.summary.tableChecksum).toBe(plain.summary.tableChecksum);
  }, 120_000);
});

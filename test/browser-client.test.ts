import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import pngjs from 'pngjs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { runRemoteClient } from '../client/remote-client.js';
import { runScenario } from '../coordinator/run-scenario.js';
import { ClientKeys } from '../shared/protocol/client-keys.js';
import { parseScenario } from '../shared/scenario/scenario-config.js';
import { VirtualClients } from '../simulation/virtual-clients.js';
import { createHash as browserCreateHash } from '../client/browser/shims/node-crypto.js';
import { decodeDatasetPack, encodeDatasetPack } from '../shared/datasets/dataset-pack.js';
import { datasetIdentity } from '../shared/datasets/dataset-identity.js';
import { loadDataset } from '../shared/datasets/dataset-registry.js';
import { loadImageFolder } from '../shared/datasets/image-folder.js';
import { indicesByClass } from '../shared/datasets/image-set.js';
import { readPickedFolder, type PickedFile } from '../client/browser/picked-folder.js';

/**
 * A client in a web browser: Debian's chromium, headless, driven by playwright-core (nothing is
 * downloaded), opens the coordinator's /protofed/join page, which runs the client code bundled
 * by esbuild with tfjs in the page. It joins a remote run beside two Node clients.
 */
const browserPath = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

/** A learned backbone, so that the browser fetches the model from the coordinator as the Node clients do. */
function scenario(mode: 'remote' | 'virtual') {
  return parseScenario({
    name: 'browser-client',
    seed: 12,
    dataset: { name: 'fashion-mnist', dir: 'embedded', baseClasses: [0, 1, 2, 3, 4] },
    backbone: { name: 'conv4', weights: join(process.cwd(), 'data/models/fashion-mnist-conv4') },
    backend: 'wasm',
    clients: { count: 3, mode, maxRestarts: 0, serveDataset: true },
    missions: { count: 4, classesPerClient: 2, shotsPerClass: 8 },
    codec: { uplink: 'int8', downlink: 'int8' },
    evaluation: { testPerClass: 50 },
    timeouts: { phaseMs: 60_000, connectMs: 60_000 },
  });
}

/** A folder of one class whose only image is not an image. */
function brokenFolder(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'protofed-picked-')), 'my-images');
  mkdirSync(join(dir, 'Trouser'), { recursive: true });
  writeFileSync(join(dir, 'Trouser', 'broken.png'), 'this is not a PNG');
  return dir;
}

/**
 * Six classes of the shipped Fashion-MNIST subset as an image folder on disk, 12 greyscale PNGs
 * each (10 train and 2 test by the image-folder rules), class folders named after the classes.
 */
function fashionFolder(): string {
  const data = loadDataset({ name: 'fashion-mnist', dir: 'embedded' });
  const root = join(mkdtempSync(join(tmpdir(), 'protofed-folder-run-')), 'fashion-folder');
  const byClass = indicesByClass(data.train);
  for (let c = 0; c < 6; c++) {
    const dir = join(root, data.classNames[c]!.replace('/', ' or '));
    mkdirSync(dir, { recursive: true });
    for (const [k, i] of byClass.get(c)!.slice(0, 12).entries()) {
      const png = new pngjs.PNG({ width: 28, height: 28 });
      for (let p = 0; p < 784; p++) {
        const v = data.train.images[i * 784 + p]!;
        png.data.set([v, v, v, 255], 4 * p);
      }
      writeFileSync(join(dir, `${String(k).padStart(2, '0')}.png`), pngjs.PNG.sync.write(png, { colorType: 0 }));
    }
  }
  return root;
}

describe('what the browser build puts in place of Node', () => {
  it('its SHA-256 (for model hashes, dataset identities and codebooks) is node:crypto\'s, for any length and any split of the input', () => {
    for (const n of [0, 1, 55, 56, 63, 64, 65, 127, 128, 1000, 100_003]) {
      const bytes = randomBytes(n);
      const cut = Math.floor(n / 3);
      const ours = browserCreateHash('sha256').update('prefix;').update(bytes.subarray(0, cut)).update(bytes.subarray(cut)).digest('hex');
      expect(ours).toBe(createHash('sha256').update('prefix;').update(bytes).digest('hex'));
    }
    expect(() => browserCreateHash('sha1')).toThrow(/only sha256/);
  });

  it('a dataset pack carries the dataset exactly (the same identity), and a damaged one is refused with the reason', () => {
    const data = loadDataset({ name: 'fashion-mnist', dir: 'embedded' });
    const pack = encodeDatasetPack(data);
    const back = decodeDatasetPack(pack, 'the test');
    expect(datasetIdentity(back)).toEqual(datasetIdentity(data));
    expect(back.classNames).toEqual(data.classNames);
    expect(() => decodeDatasetPack(pack.subarray(0, pack.length - 1), 'the coordinator')).toThrow(/^the coordinator: not a protofed dataset pack: it holds \d+ bytes, its header says \d+/);
    expect(() => decodeDatasetPack(new TextEncoder().encode('<html>not found</html>'), 'x')).toThrow(/does not start with "PFDP"/);
  });

  it('a picked folder is read as the image-folder loader reads the same folder on disk: same classes, split, order and resize', async () => {
    const root = join(mkdtempSync(join(tmpdir(), 'protofed-picked-')), 'flowers');
    const picked: (PickedFile & { path: string })[] = [];
    for (const [c, name] of ['tulip', 'daisy', 'rose'].entries()) {
      mkdirSync(join(root, name), { recursive: true });
      for (let i = 0; i < 4 + c; i++) {
        const size = 10 + ((c + i) % 3) * 3;
        const png = new pngjs.PNG({ width: size, height: size });
        for (let p = 0; p < size * size; p++) png.data.set([(p * 7 + c * 50) % 256, (i * 40) % 256, (p * 3) % 256, 255], 4 * p);
        const file = `img-${String(9 - i)}.png`;
        writeFileSync(join(root, name, file), pngjs.PNG.sync.write(png));
        picked.push({ webkitRelativePath: `flowers/${name}/${file}`, name: file, path: join(root, name, file) });
      }
    }
    picked.push({ webkitRelativePath: 'flowers/notes.txt', name: 'notes.txt', path: '' });
    const decode = async (f: PickedFile) => {
      const png = pngjs.PNG.sync.read(readFileSync((f as PickedFile & { path: string }).path));
      return { width: png.width, height: png.height, rgba: new Uint8Array(png.data) };
    };
    const fromDisk = loadImageFolder(root, { size: 8, channels: 1 });
    const fromBrowser = await readPickedFolder(picked.reverse(), { size: 8, channels: 1, decode });
    expect(fromBrowser.classNames).toEqual(['daisy', 'rose', 'tulip']);
    expect(datasetIdentity(fromBrowser)).toEqual(datasetIdentity(fromDisk));
    await expect(readPickedFolder([{ webkitRelativePath: 'empty/readme.md', name: 'readme.md' }], { channels: 3, decode }))
      .rejects.toThrow(/^empty: no class folders with PNG or JPEG images found/);
  });
});

describe.skipIf(!browserPath)(`a client in headless chromium${browserPath ? '' : ' (skipped: no chromium; apt-get install chromium)'}`, () => {
  it('joins a remote run beside Node clients and the run ends with the table of the all-Node run; a picked folder it cannot read is a message on the page', async () => {
    const keys = ClientKeys.generate(['c0', 'c1', 'c2']);
    const browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox'], headless: true });
    const nodeClients: Promise<void>[] = [];
    let page: Promise<{ folderError: string; status: string; backend: string; rows: string[][]; setupBytes: number; bytesUp: number; errors: string[] }> | undefined;
    try {
      const withBrowser = await runScenario(scenario('remote'), {
        keys,
        onListening: (url) => {
          for (const id of ['c0', 'c1']) nodeClients.push(runRemoteClient({ url, token: keys.secretOf(id), clientId: id, dataDir: 'embedded', log: () => {} }));
          page = (async () => {
            const tab = await browser.newPage();
            const errors: string[] = [];
            tab.on('pageerror', (err) => errors.push(err.message));
            await tab.goto(`${url}/protofed/join#client=c2&key=${keys.secretOf('c2')}`);
            await tab.waitForSelector('body[data-state="waiting"]', { timeout: 30_000 });
            // A folder whose image does not decode: the page says which file, and the client can still join.
            await tab.setInputFiles('#folder', brokenFolder());
            await tab.waitForSelector('body[data-state="failed"]', { timeout: 30_000 });
            const folderError = (await tab.textContent('#error')) ?? '';
            await tab.click('#use-pack');
            await tab.waitForSelector('body[data-state="finished"], body[data-state="failed"]', { timeout: 90_000 });
            return {
              folderError,
              status: (await tab.textContent('#status')) ?? '',
              backend: (await tab.getAttribute('#backend', 'data-backend')) ?? '',
              rows: await tab.$$eval('#missions tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent ?? ''))),
              setupBytes: Number(await tab.getAttribute('#setup-bytes', 'data-bytes')),
              bytesUp: Number(await tab.getAttribute('#bytes', 'data-learning-up')),
              errors: [...errors, ...((await tab.isVisible('#error')) ? [(await tab.textContent('#error')) ?? ''] : [])],
            };
          })();
          page.catch(() => {});
        },
      });
      await Promise.all(nodeClients);
      const shown = await page!;
      expect(shown.errors).toEqual([]);
      expect(shown.status).toBe('the run is over');
      expect(shown.folderError).toMatch(/my-images\/Trouser\/broken\.png: cannot decode this image/);
      // wasm, as the Node clients: the cpu fallback computes the same convolutions with other float rounding.
      expect(shown.backend).toBe('wasm');
      // The browser learned in every mission it was given, and reported accuracy before and after each merge.
      expect(shown.rows.length).toBeGreaterThan(0);
      for (const [, classes, before, after] of shown.rows) {
        expect(classes).toMatch(/^\d+ \S/);
        expect(before).toMatch(/^[01]\.\d{4}$/);
        expect(after).toMatch(/^[01]\.\d{4}$/);
      }
      // The page's count of its learning traffic up is the coordinator's count for c2.
      expect(shown.bytesUp).toBe(withBrowser.summary.bytesByClient.c2!.up);

      const allNode = await runScenario(scenario('virtual'), { launchers: { virtual: (ctx) => new VirtualClients(ctx) } });
      expect(withBrowser.summary.tableChecksum).toBe(allNode.summary.tableChecksum);
      expect(withBrowser.summary.missions).toBe(4);

      // The browser's setup traffic: the setup (twice: once to show the run, once to join), the
      // model and the dataset pack, counted by the coordinator as the page counted it.
      const setup = withBrowser.summary.bytesByType.down.setup!;
      const weights = statSync(join(process.cwd(), 'data/models/fashion-mnist-conv4/weights.bin')).size;
      expect(shown.setupBytes).toBeGreaterThan(weights + 500_000);
      expect(setup.encodedBytes).toBeGreaterThan(shown.setupBytes + 2 * weights);
    } finally {
      await browser.close();
    }
  }, 180_000);

  it('a picked folder joins a run on an image folder (the same folder on the Node client\'s disk) and the run ends with the all-Node table', async () => {
    const root = fashionFolder();
    const folderScenario = (mode: 'remote' | 'virtual') => parseScenario({
      name: 'browser-folder', seed: 4, dataset: { name: 'image-folder', dir: root, channels: 1 }, backbone: { name: 'pixels' },
      clients: { count: 2, mode, maxRestarts: 0 }, missions: { count: 3, classesPerClient: 2, shotsPerClass: 4 },
      codec: { uplink: 'f32', downlink: 'f32' }, timeouts: { phaseMs: 60_000, connectMs: 60_000 },
    });
    const keys = ClientKeys.generate(['c0', 'c1']);
    const browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox'], headless: true });
    let node: Promise<void> | undefined;
    let page: Promise<{ state: string; data: string; rows: number; error: string }> | undefined;
    try {
      const withBrowser = await runScenario(folderScenario('remote'), {
        keys,
        onListening: (url) => {
          node = runRemoteClient({ url, token: keys.secretOf('c0'), clientId: 'c0', dataDir: root, log: () => {} });
          page = (async () => {
            const tab = await browser.newPage();
            await tab.goto(`${url}/protofed/join#client=c1&key=${keys.secretOf('c1')}`);
            await tab.waitForSelector('body[data-state="waiting"]', { timeout: 30_000 });
            await tab.setInputFiles('#folder', root);
            await tab.waitForSelector('body[data-state="finished"], body[data-state="failed"]', { timeout: 90_000 });
            return {
              state: (await tab.getAttribute('body', 'data-state')) ?? '',
              data: (await tab.textContent('#data')) ?? '',
              rows: await tab.locator('#missions tbody tr').count(),
              error: (await tab.isVisible('#error')) ? (await tab.textContent('#error')) ?? '' : '',
            };
          })();
          page.catch(() => {});
        },
      });
      await node;
      const shown = await page!;
      expect(shown.error).toBe('');
      expect(shown.state).toBe('finished');
      expect(shown.data).toBe('image-folder (custom): 60 train and 12 test images of 28×28×1, 6 classes');
      expect(shown.rows).toBeGreaterThan(0);
      const allNode = await runScenario(folderScenario('virtual'), { launchers: { virtual: (ctx) => new VirtualClients(ctx) } });
      expect(withBrowser.summary.tableChecksum).toBe(allNode.summary.tableChecksum);
    } finally {
      await browser.close();
    }
  }, 120_000);
});

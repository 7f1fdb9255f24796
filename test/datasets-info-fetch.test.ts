import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateRawSync, gzipSync } from 'node:zlib';
import { Command } from 'commander';
import pngjs from 'pngjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerDataCommands } from '../cli/data-command.js';
import { DATASET_DOWNLOADS, NetworkUnreachableError, extractTarGz, extractZip, fetchDataset, readTarEntries } from '../shared/datasets/dataset-fetch.js';
import { KNOWN_DATASETS, describeDataset, detectDatasetFormat, listDatasets } from '../shared/datasets/dataset-info.js';
import { protofedDataDir } from '../shared/datasets/data-home.js';
import { encodeIdx } from '../shared/datasets/idx.js';
import { DataFileError } from '../shared/datasets/labelled-dataset.js';
import { loadOmniglot } from '../shared/datasets/omniglot.js';

let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'protofed-info-fetch-'));
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

// ---------- fixture writers ----------

function greyPng(width: number, height: number, value: number): Buffer {
  const png = new pngjs.PNG({ width, height });
  for (let i = 0; i < width * height; i++) png.data.set([value, value, value, 255], 4 * i);
  return pngjs.PNG.sync.write(png, { colorType: 0 });
}

function rgbPng(width: number, height: number, rgb: [number, number, number]): Buffer {
  const png = new pngjs.PNG({ width, height });
  for (let i = 0; i < width * height; i++) png.data.set([...rgb, 255], 4 * i);
  return pngjs.PNG.sync.write(png, { colorType: 2 });
}

/** IDX files for `train` / `test` label lists, 3x2 images; the train images are gzipped. */
function idxFiles(train: number[], test: number[]): Record<string, Uint8Array> {
  const images = (n: number): Uint8Array => encodeIdx({ dtype: 'u8', dims: [n, 3, 2], data: new Uint8Array(n * 6) });
  const labels = (l: number[]): Uint8Array => encodeIdx({ dtype: 'u8', dims: [l.length], data: Uint8Array.from(l) });
  return {
    'train-images-idx3-ubyte.gz': gzipSync(images(train.length)),
    'train-labels-idx1-ubyte.gz': gzipSync(labels(train)),
    't10k-images-idx3-ubyte.gz': gzipSync(images(test.length)),
    't10k-labels-idx1-ubyte.gz': gzipSync(labels(test)),
  };
}

/** Omniglot entries: `images_<split>/<Alphabet>/<char>/<n>.png` → PNG bytes. */
function omniglotEntries(split: string, alphabets: Record<string, number[]>, size = 6): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const [alphabet, counts] of Object.entries(alphabets)) {
    counts.forEach((count, c) => {
      for (let i = 1; i <= count; i++) out[`${split}/${alphabet}/character${String(c + 1).padStart(2, '0')}/${c}_${String(i).padStart(2, '0')}.png`] = greyPng(size, size, 255);
    });
  }
  return out;
}

function writeTree(root: string, files: Record<string, Uint8Array>): void {
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(join(root, name, '..'), { recursive: true });
    writeFileSync(join(root, name), data);
  }
}

/** A zip archive; even entries deflated, odd ones stored, with folder entries first (unless `withDirs` is false). */
function zip(files: Record<string, Uint8Array>, withDirs = true): Buffer {
  const local: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  const dirs = new Set<string>();
  for (const name of withDirs ? Object.keys(files) : []) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(`${parts.slice(0, i).join('/')}/`);
  }
  const entries: [string, Uint8Array][] = [...[...dirs].map((d): [string, Uint8Array] => [d, new Uint8Array(0)]), ...Object.entries(files)];
  entries.forEach(([name, data], i) => {
    const method = name.endsWith('/') || i % 2 === 1 ? 0 : 8;
    const body = method === 8 ? deflateRawSync(data) : Buffer.from(data);
    const nameBytes = Buffer.from(name, 'utf8');
    const header = Buffer.alloc(30);
    header.writeUInt32LE(0x04034b50, 0);
    header.writeUInt16LE(20, 4);
    header.writeUInt16LE(0x800, 6);
    header.writeUInt16LE(method, 8);
    header.writeUInt32LE(crc32(data) >>> 0, 14);
    header.writeUInt32LE(body.length, 18);
    header.writeUInt32LE(data.length, 22);
    header.writeUInt16LE(nameBytes.length, 26);
    local.push(header, nameBytes, body);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(0x800, 8);
    cd.writeUInt16LE(method, 10);
    cd.writeUInt32LE(crc32(data) >>> 0, 16);
    cd.writeUInt32LE(body.length, 20);
    cd.writeUInt32LE(data.length, 24);
    cd.writeUInt16LE(nameBytes.length, 28);
    cd.writeUInt32LE(offset, 42);
    central.push(cd, nameBytes);
    offset += 30 + nameBytes.length + body.length;
  });
  const cdBytes = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cdBytes.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...local, cdBytes, eocd]);
}

function tarHeader(name: string, size: number, type: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write(type, 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

/** A tar archive; names over 100 bytes use a GNU long-name entry. */
function tar(files: Record<string, Uint8Array>): Buffer {
  const blocks: Buffer[] = [];
  const pad = (n: number): Buffer => Buffer.alloc((512 - (n % 512)) % 512);
  for (const [name, data] of Object.entries(files)) {
    if (name.length > 100) {
      const longName = Buffer.from(`${name}\0`);
      blocks.push(tarHeader('././@LongLink', longName.length, 'L'), longName, pad(longName.length));
    }
    blocks.push(tarHeader(name, data.length, '0'), Buffer.from(data), pad(data.length));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

function cifar10Files(): Record<string, Uint8Array> {
  const names = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'];
  const out: Record<string, Uint8Array> = {};
  names.forEach((n, f) => {
    const buf = Buffer.alloc(2 * 3073);
    buf[0] = f;
    buf[3073] = 9;
    out[`cifar-10-batches-bin/${n}`] = buf;
  });
  out['cifar-10-batches-bin/batches.meta.txt'] = Buffer.from('a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n');
  return out;
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

// ---------- describeDataset ----------

describe('describeDataset', () => {
  it('summarises IDX files from their headers and labels', () => {
    const dir = join(tmp, 'idx');
    writeTree(dir, idxFiles([0, 1, 1, 2, 2, 2], [0, 2]));
    const info = describeDataset(dir);
    expect(info).toEqual({
      format: 'idx', source: dir, classes: 3, images: 8, train: 6, test: 2,
      imageSize: { rows: 3, cols: 2, channels: 1 },
      imagesPerClass: { min: 2, max: 4, mean: 8 / 3 },
      splits: ['train', 't10k'],
    });
  });

  it('summarises Omniglot, decoding one image', () => {
    const dir = join(tmp, 'omni-info');
    writeTree(dir, { ...omniglotEntries('images_background', { A: [16, 17], B: [20] }, 9), ...omniglotEntries('images_evaluation', { C: [18] }, 9) });
    expect(describeDataset(dir)).toEqual({
      format: 'omniglot', source: dir, classes: 4, images: 71, train: 60, test: 11,
      imageSize: { rows: 9, cols: 9, channels: 1 },
      imagesPerClass: { min: 16, max: 20, mean: 71 / 4 },
      splits: ['images_background', 'images_evaluation'],
      groups: 3,
    });
  });

  it('summarises CIFAR-10 and CIFAR-100 from label bytes', () => {
    const c10 = join(tmp, 'c10-info');
    writeTree(c10, cifar10Files());
    const info10 = describeDataset(c10);
    expect(info10).toMatchObject({ format: 'cifar10', source: join(c10, 'cifar-10-batches-bin'), classes: 10, images: 12, train: 10, test: 2 });
    // Labels 0..5 once each and 9 six times: classes 6, 7 and 8 have no images.
    expect(info10.imagesPerClass).toEqual({ min: 0, max: 6, mean: 1.2 });
    expect(info10.splits).toEqual(['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5', 'test_batch']);

    const c100 = join(tmp, 'c100-info');
    mkdirSync(c100);
    const rec = (coarse: number, fine: number): Buffer => Buffer.concat([Buffer.from([coarse, fine]), Buffer.alloc(3072)]);
    writeFileSync(join(c100, 'train.bin'), Buffer.concat([rec(0, 5), rec(0, 5), rec(1, 6)]));
    writeFileSync(join(c100, 'test.bin'), rec(1, 6));
    expect(describeDataset(c100)).toMatchObject({
      format: 'cifar100', classes: 100, images: 4, train: 3, test: 1, imageSize: { rows: 32, cols: 32, channels: 3 }, splits: ['train', 'test'], groups: 20,
    });
  });

  it('summarises image folders and CSV splits', () => {
    const folders = join(tmp, 'folders-info');
    writeTree(folders, {
      'cats/1.png': rgbPng(5, 4, [200, 0, 0]), 'cats/2.png': rgbPng(5, 4, [0, 0, 0]), 'cats/3.png': rgbPng(5, 4, [0, 0, 0]),
      'dogs/1.png': rgbPng(5, 4, [0, 0, 0]), 'dogs/2.png': rgbPng(5, 4, [0, 0, 0]),
    });
    expect(describeDataset(folders)).toEqual({
      format: 'image-folder', source: folders, classes: 2, images: 5, train: 3, test: 2,
      imageSize: { rows: 4, cols: 5, channels: 3 },
      imagesPerClass: { min: 2, max: 3, mean: 2.5 },
      splits: [],
    });

    const csv = join(tmp, 'csv-info');
    writeTree(csv, { 'n01/a.png': greyPng(7, 3, 9), 'images/b.png': greyPng(7, 3, 9) });
    writeFileSync(join(csv, 'train.csv'), 'filename,label\na.png,n01\n');
    writeFileSync(join(csv, 'test.csv'), 'filename,label\nb.png,n02\n');
    expect(describeDataset(csv)).toMatchObject({
      format: 'image-folder-csv', classes: 2, images: 2, imageSize: { rows: 3, cols: 7, channels: 1 }, splits: ['train', 'test'], groups: 2,
    });
  });

  it('names the folder when the layout is unknown', () => {
    const dir = join(tmp, 'nothing');
    mkdirSync(dir);
    writeFileSync(join(dir, 'notes.txt'), 'x');
    expect(() => describeDataset(dir)).toThrow(DataFileError);
    expect(() => detectDatasetFormat(dir)).toThrow(`${dir}: unrecognised dataset layout`);
    expect(() => describeDataset(join(tmp, 'absent'))).toThrow(/absent: dataset folder does not exist/);
  });
});

describe('listDatasets', () => {
  it('finds datasets under PROTOFED_DATA and reports where it looked', () => {
    const data = join(tmp, 'protofed-data');
    writeTree(join(data, 'omniglot'), omniglotEntries('images_background', { A: [20] }));
    writeTree(join(data, 'cifar10'), cifar10Files());
    const env = { PROTOFED_DATA: data };
    const listing = listDatasets(env);
    expect(listing.map((d) => d.name)).toEqual(KNOWN_DATASETS.map((d) => d.name));
    expect(listing.find((d) => d.name === 'omniglot')).toMatchObject({ present: true, dir: join(data, 'omniglot') });
    expect(listing.find((d) => d.name === 'cifar10')).toMatchObject({ present: true, dir: join(data, 'cifar10') });
    expect(listing.find((d) => d.name === 'cifar100')).toMatchObject({ present: false, searched: [join(data, 'cifar100')] });
    expect(listing.find((d) => d.name === 'mini-imagenet')).toMatchObject({ present: false, fetchable: false });
    // Fashion-MNIST is always present: the system copy or the embedded subset.
    expect(listing.find((d) => d.name === 'fashion-mnist')!.present).toBe(true);
    expect(protofedDataDir('mnist', {})).toMatch(/\.cache\/protofed\/data\/mnist$/);
  });
});

// ---------- fetchDataset, against a local server only ----------

describe('fetchDataset', () => {
  let server: Server;
  let baseUrl: string;
  const served: Record<string, Uint8Array> = {};
  const requests: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      requests.push(path);
      if (path.startsWith('/hang/')) return; // never answers
      const body = served[path.replace(/^\/files\//, '')];
      if (!path.startsWith('/files/') || !body) {
        res.writeHead(404).end('not here');
        return;
      }
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/files`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  });

  it('downloads, verifies and unpacks Omniglot zips, and reuses them next time', async () => {
    const background = zip(omniglotEntries('images_background', { Alpha: [16, 16], Beta: [16] }));
    const evaluation = zip({ ...omniglotEntries('images_evaluation', { Gamma: [17] }), '__MACOSX/._junk': new Uint8Array(3) });
    served['images_background.zip'] = background;
    served['images_evaluation.zip'] = evaluation;
    const dest = join(tmp, 'fetched-omniglot');
    const sha = { 'images_background.zip': sha256(background), 'images_evaluation.zip': sha256(evaluation) };
    const lines: string[] = [];
    const result = await fetchDataset('omniglot', { destDir: dest, baseUrl, sha256: sha, log: (l) => lines.push(l) });
    expect(result.files.map((f) => [f.file, f.reused, f.bytes])).toEqual([
      ['images_background.zip', false, background.length],
      ['images_evaluation.zip', false, evaluation.length],
    ]);
    expect(result.extracted).toHaveLength(16 * 3 + 17);
    expect(readdirSync(dest).sort()).toEqual(['.images_background.zip.unpacked', '.images_evaluation.zip.unpacked', 'images_background', 'images_evaluation']);
    const ds = loadOmniglot(dest, { size: 6 });
    expect(ds.classNames).toEqual(['Alpha/character01', 'Alpha/character02', 'Beta/character01', 'Gamma/character01']);
    expect(ds.baseClasses).toEqual([0, 1, 2]);
    expect(describeDataset(dest).format).toBe('omniglot');
    expect(lines.some((l) => l.includes(`${baseUrl}/images_background.zip`))).toBe(true);

    const before = requests.length;
    const again = await fetchDataset('omniglot', { destDir: dest, baseUrl, sha256: sha });
    expect(again.files.every((f) => f.reused)).toBe(true);
    expect(requests.length).toBe(before);
  });

  it('downloads IDX files as they are and unpacks a CIFAR tar.gz', async () => {
    const idx = idxFiles([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [9, 8]);
    Object.assign(served, idx);
    const fm = join(tmp, 'fetched-fashion');
    const sha = Object.fromEntries(Object.entries(idx).map(([k, v]) => [k, sha256(v)]));
    await fetchDataset('fashion-mnist', { destDir: fm, baseUrl: `${baseUrl}/`, sha256: sha });
    expect(readdirSync(fm).sort()).toEqual(Object.keys(idx).sort());
    expect(describeDataset(fm)).toMatchObject({ format: 'idx', classes: 10, images: 12 });

    const files = cifar10Files();
    const longName = `cifar-10-batches-bin/${'deep/'.repeat(25)}readme.html`;
    const archive = gzipSync(tar({ ...files, [longName]: Buffer.from('<html>') }));
    served['cifar-10-binary.tar.gz'] = archive;
    const c10 = join(tmp, 'fetched-cifar10');
    const result = await fetchDataset('cifar10', { destDir: c10, baseUrl, sha256: { 'cifar-10-binary.tar.gz': sha256(archive) } });
    expect(result.extracted).toContain(longName);
    expect(readFileSync(join(c10, longName), 'utf8')).toBe('<html>');
    expect(existsSync(join(c10, 'cifar-10-binary.tar.gz'))).toBe(false);
    expect(describeDataset(c10)).toMatchObject({ format: 'cifar10', images: 12 });
  });

  it('rejects a file whose SHA-256 does not match, and keeps nothing of it', async () => {
    served['cifar-100-binary.tar.gz'] = gzipSync(tar({ 'x.bin': Buffer.alloc(10) }));
    const dest = join(tmp, 'fetched-mismatch');
    const wrong = 'ab'.repeat(32);
    const attempt = fetchDataset('cifar100', { destDir: dest, baseUrl, sha256: { 'cifar-100-binary.tar.gz': wrong } });
    await expect(attempt).rejects.toThrow(DataFileError);
    await expect(fetchDataset('cifar100', { destDir: dest, baseUrl, sha256: { 'cifar-100-binary.tar.gz': wrong } })).rejects.toThrow(
      new RegExp(`^${baseUrl}/cifar-100-binary\\.tar\\.gz: SHA-256 mismatch: got ${sha256(served['cifar-100-binary.tar.gz'])} \\(\\d+ bytes\\), expected ${wrong}`),
    );
    expect(readdirSync(dest)).toEqual([]);
  });

  it('checks the published hashes by default', async () => {
    const dest = join(tmp, 'fetched-default-hash');
    // MNIST's first file is train-images; serve a fake one so the published hash rejects it.
    served['train-images-idx3-ubyte.gz'] = Buffer.from('fake');
    await expect(fetchDataset('mnist', { destDir: dest, baseUrl })).rejects.toThrow(
      `expected ${DATASET_DOWNLOADS.mnist.files[0]!.sha256}`,
    );
  });

  it('reports HTTP errors with the URL', async () => {
    await expect(fetchDataset('omniglot', { destDir: join(tmp, 'fetched-404'), baseUrl: `${baseUrl}/nowhere` })).rejects.toThrow(
      `download of ${baseUrl}/nowhere/images_background.zip failed: HTTP 404 Not Found`,
    );
  });

  it('fails fast when the host refuses connections', async () => {
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((done) => closed.close(done));
    const dest = join(tmp, 'fetched-refused');
    const t0 = performance.now();
    const attempt = fetchDataset('cifar10', { destDir: dest, baseUrl: `http://127.0.0.1:${port}` });
    await expect(attempt).rejects.toThrow(NetworkUnreachableError);
    await expect(fetchDataset('cifar10', { destDir: dest, baseUrl: `http://127.0.0.1:${port}` })).rejects.toThrow(
      `cannot reach 127.0.0.1:${port}: this machine has no internet access; copy the files to ${dest} by hand`,
    );
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('gives up on a host that does not answer within the timeout', async () => {
    const dest = join(tmp, 'fetched-timeout');
    const hang = baseUrl.replace(/\/files$/, '/hang');
    const t0 = performance.now();
    await expect(fetchDataset('omniglot', { destDir: dest, baseUrl: hang, timeoutMs: 300 })).rejects.toThrow(
      `cannot reach ${new URL(hang).host}: this machine has no internet access; copy the files to ${dest} by hand`,
    );
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it('treats DNS failures as no internet, naming the official host (fetch injected, nothing sent)', async () => {
    const dnsFailure = Object.assign(new Error('getaddrinfo ENOTFOUND www.cs.toronto.edu'), { code: 'ENOTFOUND' });
    const fetchImpl = vi.fn(async () => {
      throw new TypeError('fetch failed', { cause: dnsFailure });
    }) as unknown as typeof fetch;
    const dest = join(tmp, 'fetched-dns');
    await expect(fetchDataset('cifar100', { destDir: dest, fetchImpl })).rejects.toThrow(
      `cannot reach www.cs.toronto.edu: this machine has no internet access; copy the files to ${dest} by hand`,
    );
    expect(fetchImpl).toHaveBeenCalledTimes(1);
    expect((fetchImpl as unknown as { mock: { calls: unknown[][] } }).mock.calls[0]![0]).toBe('https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz');
  });

  it('refuses unknown names and archive entries that escape the folder', async () => {
    await expect(fetchDataset('imagenet', { destDir: join(tmp, 'x') })).rejects.toThrow('cannot fetch "imagenet": protofed can fetch omniglot, fashion-mnist, mnist, cifar10, cifar100');
    const dest = join(tmp, 'escape');
    expect(() => extractZip(zip({ 'ok/../../evil.txt': Buffer.from('x') }, false), dest, 'evil.zip')).toThrow(`evil.zip: entry "ok/../../evil.txt" would be written outside ${dest}`);
    expect(existsSync(join(tmp, 'evil.txt'))).toBe(false);
    expect(() => extractTarGz(gzipSync(tar({ '/etc/evil': Buffer.from('x') })), dest, 'evil.tar.gz')).toThrow(/evil\.tar\.gz: entry "\/etc\/evil" would be written outside/);
    const corrupt = tar({ 'a.txt': Buffer.from('hello') });
    corrupt[0] = corrupt[0]! ^ 1;
    expect(() => readTarEntries(corrupt, 'bad.tar')).toThrow('bad.tar: corrupt tar header at byte 0 (checksum mismatch)');
    const badZip = zip({ 'a.txt': Buffer.from('hello hello hello') });
    badZip[40] = badZip[40]! ^ 0xff;
    expect(() => extractZip(badZip, dest, 'bad.zip')).toThrow(/bad\.zip: entry "a\.txt": (corrupt deflate data|size or CRC mismatch)/);
    expect(() => extractZip(Buffer.from('not a zip at all, no, not at all'), dest, 'none.zip')).toThrow('none.zip: not a zip archive');
  });

  it('has a published SHA-256 and an official URL for every file', () => {
    for (const spec of Object.values(DATASET_DOWNLOADS)) {
      for (const file of spec.files) {
        expect(file.sha256).toMatch(/^[0-9a-f]{64}$/);
        expect(file.url.endsWith(`/${file.file}`)).toBe(true);
      }
    }
  });
});

// ---------- the data commands ----------

describe('protofed data', () => {
  async function run(...args: string[]): Promise<string> {
    const program = new Command('protofed').exitOverride();
    registerDataCommands(program);
    let out = '';
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    try {
      await program.parseAsync(['node', 'protofed', 'data', ...args]);
    } finally {
      spy.mockRestore();
    }
    return out;
  }

  it('data info --json prints exactly one JSON object', async () => {
    const dir = join(tmp, 'cli-omni');
    writeTree(dir, omniglotEntries('images_evaluation', { Z: [16, 18] }));
    const out = await run('info', dir, '--json');
    expect(out.trim().split('\n')).toHaveLength(1);
    const info = JSON.parse(out) as Record<string, unknown>;
    expect(info).toMatchObject({ format: 'omniglot', classes: 2, images: 34, groups: 1 });
    const text = await run('info', dir);
    expect(text).toContain('format     omniglot');
    expect(text).toContain('images     34 (30 train / 4 test)');
  });

  it('data list shows every known dataset, present or not, and where', async () => {
    const data = join(tmp, 'cli-data');
    writeTree(join(data, 'cifar10'), cifar10Files());
    const saved = process.env.PROTOFED_DATA;
    process.env.PROTOFED_DATA = data;
    try {
      const out = await run('list');
      const lines = out.trim().split('\n');
      expect(lines[0]).toMatch(/^dataset\s+present\s+where$/);
      expect(lines).toHaveLength(1 + KNOWN_DATASETS.length);
      expect(out).toMatch(new RegExp(`cifar10\\s+yes \\(full\\)\\s+${join(data, 'cifar10')}`));
      expect(out).toMatch(new RegExp(`cifar100\\s+no\\s+not in ${join(data, 'cifar100')} \\(protofed data fetch cifar100\\)`));
    } finally {
      if (saved === undefined) delete process.env.PROTOFED_DATA;
      else process.env.PROTOFED_DATA = saved;
    }
  });

  it('errors are thrown for the top-level handler', async () => {
    await expect(run('info', join(tmp, 'nope'))).rejects.toThrow(/nope: dataset folder does not exist/);
    await expect(run('fetch', 'mini-imagenet', '--dir', join(tmp, 'mi'))).rejects.toThrow(`mini-imagenet cannot be downloaded automatically`);
    await expect(run('fetch', 'nonsense', '--dir', join(tmp, 'ns'))).rejects.toThrow('cannot fetch "nonsense"');
  });
});

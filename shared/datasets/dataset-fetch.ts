import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, posix, resolve, sep } from 'node:path';
import { crc32, gunzipSync, inflateRawSync } from 'node:zlib';
import { DataFileError } from './labelled-dataset.js';

export type FetchableDatasetName = 'omniglot' | 'fashion-mnist' | 'mnist' | 'cifar10' | 'cifar100';

/** One file of a dataset's official release. */
export interface DownloadFile {
  /** File name, also the name it is saved under. */
  file: string;
  url: string;
  /** SHA-256 of the file as published (hex). */
  sha256: string;
  /** Size in bytes as published. */
  size: number;
  /** Unpack into the destination folder after the download (the archive is then deleted). */
  extract?: 'zip' | 'tar.gz';
}

export interface DatasetDownload {
  name: FetchableDatasetName;
  files: DownloadFile[];
}

/*
 * Every file is checked against SHA-256. The hashes and sizes are those published by TensorFlow
 * Datasets (tensorflow_datasets/url_checksums/<name>.txt) for these exact URLs. The Fashion-MNIST
 * copies in /usr/share/datasets/fashion-mnist/ are not byte-identical to the release: they were
 * re-gzipped without the gzip file-name field (23 or 24 bytes shorter), so their hashes differ
 * and are not used here.
 */
const OMNIGLOT = 'https://github.com/brendenlake/omniglot/raw/master/python/';
const FASHION = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/';
const MNIST = 'https://storage.googleapis.com/cvdf-datasets/mnist/';
const KRIZ = 'https://www.cs.toronto.edu/~kriz/';

export const DATASET_DOWNLOADS: Readonly<Record<FetchableDatasetName, DatasetDownload>> = Object.freeze({
  omniglot: {
    name: 'omniglot',
    files: [
      { file: 'images_background.zip', url: `${OMNIGLOT}images_background.zip`, size: 9464212, extract: 'zip', sha256: 'ad41ab679c8b5d90b271ef46be6987cc81211774a695c29dcc5367b2b26ee640' },
      { file: 'images_evaluation.zip', url: `${OMNIGLOT}images_evaluation.zip`, size: 6462886, extract: 'zip', sha256: '1f61a8f3366785b057fc117d9228e78a16e3d976c8953b2a10fcc74cf0609cee' },
    ],
  },
  'fashion-mnist': {
    name: 'fashion-mnist',
    files: [
      { file: 'train-images-idx3-ubyte.gz', url: `${FASHION}train-images-idx3-ubyte.gz`, size: 26421880, sha256: '3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84' },
      { file: 'train-labels-idx1-ubyte.gz', url: `${FASHION}train-labels-idx1-ubyte.gz`, size: 29515, sha256: 'a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845' },
      { file: 't10k-images-idx3-ubyte.gz', url: `${FASHION}t10k-images-idx3-ubyte.gz`, size: 4422102, sha256: '346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073' },
      { file: 't10k-labels-idx1-ubyte.gz', url: `${FASHION}t10k-labels-idx1-ubyte.gz`, size: 5148, sha256: '67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5' },
    ],
  },
  mnist: {
    name: 'mnist',
    files: [
      { file: 'train-images-idx3-ubyte.gz', url: `${MNIST}train-images-idx3-ubyte.gz`, size: 9912422, sha256: '440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609' },
      { file: 'train-labels-idx1-ubyte.gz', url: `${MNIST}train-labels-idx1-ubyte.gz`, size: 28881, sha256: '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c' },
      { file: 't10k-images-idx3-ubyte.gz', url: `${MNIST}t10k-images-idx3-ubyte.gz`, size: 1648877, sha256: '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6' },
      { file: 't10k-labels-idx1-ubyte.gz', url: `${MNIST}t10k-labels-idx1-ubyte.gz`, size: 4542, sha256: 'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6' },
    ],
  },
  cifar10: {
    name: 'cifar10',
    files: [
      { file: 'cifar-10-binary.tar.gz', url: `${KRIZ}cifar-10-binary.tar.gz`, size: 170052171, extract: 'tar.gz', sha256: 'c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd' },
    ],
  },
  cifar100: {
    name: 'cifar100',
    files: [
      { file: 'cifar-100-binary.tar.gz', url: `${KRIZ}cifar-100-binary.tar.gz`, size: 168513733, extract: 'tar.gz', sha256: '58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec' },
    ],
  },
});

export interface FetchOptions {
  /** Where the files go (created if missing). */
  destDir: string;
  /** Replaces the folder part of every URL, e.g. a local mirror: `${baseUrl}/${file}`. */
  baseUrl?: string;
  /** The fetch to use (default: the global fetch). */
  fetchImpl?: typeof fetch;
  /** Expected SHA-256 per file name, overriding the published ones (for mirrors of other builds, and tests). */
  sha256?: Record<string, string>;
  /** Give up on a host that has not answered, or a download that sent nothing, for this long (default 10 000 ms). */
  timeoutMs?: number;
  /** Progress lines, one per file. */
  log?: (line: string) => void;
}

export interface FetchedFile {
  file: string;
  url: string;
  sha256: string;
  /** Size of the file; 0 for an archive unpacked by an earlier fetch (and since deleted). */
  bytes: number;
  /** True when a verified copy (or its unpacked contents) was already in destDir and nothing was downloaded. */
  reused: boolean;
}

export interface FetchResult {
  name: FetchableDatasetName;
  dir: string;
  files: FetchedFile[];
  /** Paths (relative to `dir`) written by unpacking archives. */
  extracted: string[];
}

/** The host could not be reached at all: DNS failure, refused or reset connection, or no answer in time. */
export class NetworkUnreachableError extends Error {
  constructor(
    public readonly host: string,
    public readonly dir: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot reach ${host}: this machine has no internet access; copy the files to ${dir} by hand`, options);
    this.name = 'NetworkUnreachableError';
  }
}

const NETWORK_ERROR_CODES = new Set([
  'ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NODATA', 'ECONNREFUSED', 'ECONNRESET', 'ENETUNREACH', 'ENETDOWN',
  'EHOSTUNREACH', 'EHOSTDOWN', 'ETIMEDOUT', 'EPIPE', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT',
]);

function errorCodes(err: unknown): string[] {
  const codes: string[] = [];
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    // Happy-eyeballs failures (IPv4 and IPv6 both refused) come as an AggregateError.
    if (e instanceof AggregateError) for (const inner of e.errors) codes.push(...errorCodes(inner));
  }
  return codes;
}

function isUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'AbortError' || err.name === 'TimeoutError') return true;
  if (errorCodes(err).some((c) => NETWORK_ERROR_CODES.has(c))) return true;
  // undici reports every connection-level failure as TypeError('fetch failed').
  return err instanceof TypeError && err.message === 'fetch failed';
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function urlFor(spec: DownloadFile, baseUrl: string | undefined): string {
  return baseUrl === undefined ? spec.url : `${baseUrl.replace(/\/+$/, '')}/${spec.file}`;
}

/** Downloads `url` to `dest`, hashing as it goes; returns the SHA-256 and byte count. */
async function download(
  url: string,
  dest: string,
  destDir: string,
  fetchImpl: typeof fetch,
  timeoutMs: number,
): Promise<{ sha256: string; bytes: number }> {
  const host = new URL(url).host;
  const controller = new AbortController();
  let timer = setTimeout(() => controller.abort(), timeoutMs);
  let response: Response;
  try {
    response = await fetchImpl(url, { signal: controller.signal, redirect: 'follow' });
  } catch (err) {
    clearTimeout(timer);
    if (isUnreachable(err)) throw new NetworkUnreachableError(host, destDir, { cause: err });
    throw new Error(`download of ${url} failed: ${(err as Error).message}`, { cause: err });
  }
  if (!response.ok || !response.body) {
    clearTimeout(timer);
    controller.abort();
    throw new Error(`download of ${url} failed: HTTP ${response.status} ${response.statusText}`.trimEnd());
  }

  const hash = createHash('sha256');
  let bytes = 0;
  const fd = openSync(dest, 'w');
  try {
    const reader = response.body.getReader();
    for (;;) {
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(), timeoutMs);
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (controller.signal.aborted) {
          throw new Error(`download of ${url} stalled: nothing received for ${timeoutMs / 1000} s after ${bytes} bytes`, { cause: err });
        }
        throw new Error(`download of ${url} failed after ${bytes} bytes: ${(err as Error).message}`, { cause: err });
      }
      if (chunk.done) break;
      hash.update(chunk.value);
      writeSync(fd, chunk.value);
      bytes += chunk.value.length;
    }
  } finally {
    clearTimeout(timer);
    closeSync(fd);
  }
  return { sha256: hash.digest('hex'), bytes };
}

/**
 * Downloads a dataset's official files into `destDir`, checks each against its SHA-256, and unpacks
 * archives there (Omniglot's zips, CIFAR's tar.gz; the IDX .gz files stay as they are, which is how
 * the IDX loader reads them). A file already in `destDir` with the right hash is not downloaded
 * again. An unreachable host fails at once with a `NetworkUnreachableError`.
 *
 * @example
 * await fetchDataset('omniglot', { destDir: protofedDataDir('omniglot') });
 * // → <destDir>/images_background/…, <destDir>/images_evaluation/…
 */
export async function fetchDataset(name: string, options: FetchOptions): Promise<FetchResult> {
  const spec = (DATASET_DOWNLOADS as Record<string, DatasetDownload | undefined>)[name];
  if (!spec) {
    throw new Error(`cannot fetch "${name}": protofed can fetch ${Object.keys(DATASET_DOWNLOADS).join(', ')}`);
  }
  const dir = resolve(options.destDir);
  const fetchImpl = options.fetchImpl ?? fetch;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const log = options.log ?? (() => {});
  mkdirSync(dir, { recursive: true });

  const files: FetchedFile[] = [];
  const extracted: string[] = [];
  for (const file of spec.files) {
    const url = urlFor(file, options.baseUrl);
    const expected = (options.sha256?.[file.file] ?? file.sha256).toLowerCase();
    const target = join(dir, file.file);
    // An unpacked archive is deleted; this marker (holding its hash) says it need not be fetched again.
    const marker = join(dir, `.${file.file}.unpacked`);
    if (file.extract && existsSync(marker) && readFileSync(marker, 'utf8').trim() === expected) {
      log(`${file.file}: already downloaded and unpacked`);
      files.push({ file: file.file, url, sha256: expected, bytes: 0, reused: true });
      continue;
    }

    if (existsSync(target) && sha256File(target) === expected) {
      log(`${file.file}: already downloaded and verified`);
      files.push({ file: file.file, url, sha256: expected, bytes: statSync(target).size, reused: true });
    } else {
      log(`${file.file}: downloading ${url}`);
      const part = `${target}.part`;
      try {
        const got = await download(url, part, dir, fetchImpl, timeoutMs);
        if (got.sha256 !== expected) {
          const sizeNote = options.sha256?.[file.file] === undefined && got.bytes !== file.size ? `, expected ${file.size}` : '';
          throw new DataFileError(
            url,
            `SHA-256 mismatch: got ${got.sha256} (${got.bytes} bytes${sizeNote}), expected ${expected}; the download is corrupt or not the official file, so it was deleted`,
          );
        }
        renameSync(part, target);
        files.push({ file: file.file, url, sha256: got.sha256, bytes: got.bytes, reused: false });
      } finally {
        rmSync(part, { force: true });
      }
    }

    if (file.extract) {
      log(`${file.file}: unpacking into ${dir}`);
      const archive = readFileSync(target);
      extracted.push(...(file.extract === 'zip' ? extractZip(archive, dir, target) : extractTarGz(archive, dir, target)));
      writeFileSync(marker, `${expected}\n`);
      rmSync(target, { force: true });
    }
  }
  return { name: spec.name, dir, files, extracted };
}

/** Joins an archive entry's name to `destDir`, refusing absolute names and `..` segments. */
function entryPath(destDir: string, name: string, archiveLabel: string): string {
  const normalised = posix.normalize(name.replace(/\\/g, '/'));
  if (normalised.startsWith('/') || /^[a-zA-Z]:/.test(normalised) || normalised.split('/').includes('..')) {
    throw new DataFileError(archiveLabel, `entry "${name}" would be written outside ${destDir}`);
  }
  const path = resolve(destDir, normalised);
  if (path !== resolve(destDir) && !path.startsWith(resolve(destDir) + sep)) {
    throw new DataFileError(archiveLabel, `entry "${name}" would be written outside ${destDir}`);
  }
  return path;
}

function isJunk(name: string): boolean {
  return name.startsWith('__MACOSX/') || name.split('/').pop() === '.DS_Store';
}

/** A file inside an archive. */
export interface ArchiveEntry {
  name: string;
  directory: boolean;
  data: Uint8Array;
}

/**
 * Lists a zip archive's entries (stored or deflated; no ZIP64, no encryption), checking sizes and CRCs.
 *
 * @example
 * readZipEntries(readFileSync('images_background.zip'), 'images_background.zip').length;
 */
export function readZipEntries(archive: Uint8Array, archiveLabel: string): ArchiveEntry[] {
  const view = new DataView(archive.buffer, archive.byteOffset, archive.byteLength);
  let eocd = -1;
  for (let i = archive.length - 22; i >= Math.max(0, archive.length - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new DataFileError(archiveLabel, 'not a zip archive (no end-of-central-directory record; truncated?)');
  const entryCount = view.getUint16(eocd + 10, true);
  const cdOffset = view.getUint32(eocd + 16, true);
  if (entryCount === 0xffff || cdOffset === 0xffffffff) throw new DataFileError(archiveLabel, 'ZIP64 archives are not supported');

  const entries: ArchiveEntry[] = [];
  let p = cdOffset;
  for (let n = 0; n < entryCount; n++) {
    if (p + 46 > archive.length || view.getUint32(p, true) !== 0x02014b50) {
      throw new DataFileError(archiveLabel, `corrupt zip central directory at entry ${n}`);
    }
    const flags = view.getUint16(p + 8, true);
    const method = view.getUint16(p + 10, true);
    const crc = view.getUint32(p + 16, true);
    const compressedSize = view.getUint32(p + 20, true);
    const size = view.getUint32(p + 24, true);
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    const localOffset = view.getUint32(p + 42, true);
    const name = Buffer.from(archive.subarray(p + 46, p + 46 + nameLen)).toString(flags & 0x800 ? 'utf8' : 'latin1');
    p += 46 + nameLen + extraLen + commentLen;

    if (flags & 1) throw new DataFileError(archiveLabel, `entry "${name}" is encrypted`);
    if (localOffset + 30 > archive.length || view.getUint32(localOffset, true) !== 0x04034b50) {
      throw new DataFileError(archiveLabel, `entry "${name}": bad local header`);
    }
    const start = localOffset + 30 + view.getUint16(localOffset + 26, true) + view.getUint16(localOffset + 28, true);
    if (start + compressedSize > archive.length) throw new DataFileError(archiveLabel, `entry "${name}" is truncated`);
    const raw = archive.subarray(start, start + compressedSize);
    if (name.endsWith('/')) {
      entries.push({ name, directory: true, data: new Uint8Array(0) });
      continue;
    }
    let data: Uint8Array;
    if (method === 0) data = raw;
    else if (method === 8) {
      try {
        data = inflateRawSync(raw);
      } catch (err) {
        throw new DataFileError(archiveLabel, `entry "${name}": corrupt deflate data (${(err as Error).message})`);
      }
    } else throw new DataFileError(archiveLabel, `entry "${name}" uses compression method ${method}; only stored (0) and deflate (8) are supported`);
    if (data.length !== size || (crc32(data) >>> 0) !== crc) {
      throw new DataFileError(archiveLabel, `entry "${name}": size or CRC mismatch (corrupt archive)`);
    }
    entries.push({ name, directory: false, data });
  }
  return entries;
}

function cString(bytes: Uint8Array, start: number, length: number): string {
  const field = bytes.subarray(start, start + length);
  const end = field.indexOf(0);
  return Buffer.from(end === -1 ? field : field.subarray(0, end)).toString('utf8');
}

function tarNumber(bytes: Uint8Array, start: number, length: number): number {
  if (bytes[start]! & 0x80) {
    // GNU base-256 for sizes of 8 GiB and more.
    let v = 0;
    for (let i = 1; i < length; i++) v = v * 256 + bytes[start + i]!;
    return v;
  }
  const text = cString(bytes, start, length).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

/**
 * Lists a (ustar, GNU or pax) tar archive's regular files and folders; links and devices are skipped.
 *
 * @example
 * readTarEntries(gunzipSync(readFileSync('cifar-10-binary.tar.gz')), 'cifar-10-binary.tar.gz');
 */
export function readTarEntries(tar: Uint8Array, archiveLabel: string): ArchiveEntry[] {
  const entries: ArchiveEntry[] = [];
  let p = 0;
  let longName: string | undefined;
  while (p + 512 <= tar.length) {
    const header = tar.subarray(p, p + 512);
    if (header.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
    if (sum !== tarNumber(header, 148, 8)) throw new DataFileError(archiveLabel, `corrupt tar header at byte ${p} (checksum mismatch)`);

    const size = tarNumber(header, 124, 12);
    const type = String.fromCharCode(header[156]!);
    const dataStart = p + 512;
    if (dataStart + size > tar.length) throw new DataFileError(archiveLabel, `truncated tar: entry at byte ${p} needs ${size} bytes of data`);
    const data = tar.subarray(dataStart, dataStart + size);
    p = dataStart + Math.ceil(size / 512) * 512;

    const magic = cString(header, 257, 6);
    const prefix = magic.startsWith('ustar') ? cString(header, 345, 155) : '';
    const name = longName ?? (prefix ? `${prefix}/${cString(header, 0, 100)}` : cString(header, 0, 100));
    longName = undefined;

    if (type === 'L') {
      longName = cString(data, 0, data.length);
      continue;
    }
    if (type === 'x') {
      const path = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(Buffer.from(data).toString('utf8'));
      if (path) longName = path[1];
      continue;
    }
    if (type === 'g') continue;
    if (type === '5') entries.push({ name: name.endsWith('/') ? name : `${name}/`, directory: true, data: new Uint8Array(0) });
    else if (type === '0' || type === '\0' || type === '7') entries.push({ name, directory: false, data });
  }
  return entries;
}

function writeEntries(entries: ArchiveEntry[], destDir: string, archiveLabel: string): string[] {
  const written: string[] = [];
  for (const entry of entries) {
    if (isJunk(entry.name)) continue;
    const path = entryPath(destDir, entry.name, archiveLabel);
    if (entry.directory) {
      mkdirSync(path, { recursive: true });
      continue;
    }
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, entry.data);
    written.push(posix.normalize(entry.name.replace(/\\/g, '/')));
  }
  return written;
}

/**
 * Unpacks a zip archive into `destDir`; returns the files written, relative to `destDir`.
 *
 * @example
 * extractZip(readFileSync('images_evaluation.zip'), '/data/omniglot', 'images_evaluation.zip');
 */
export function extractZip(archive: Uint8Array, destDir: string, archiveLabel: string): string[] {
  return writeEntries(readZipEntries(archive, archiveLabel), destDir, archiveLabel);
}

/**
 * Unpacks a gzip-compressed tar archive into `destDir`; returns the files written, relative to `destDir`.
 *
 * @example
 * extractTarGz(readFileSync('cifar-10-binary.tar.gz'), '/data/cifar10', 'cifar-10-binary.tar.gz');
 */
export function extractTarGz(archive: Uint8Array, destDir: string, archiveLabel: string): string[] {
  let tar: Uint8Array;
  try {
    tar = gunzipSync(archive);
  } catch (err) {
    throw new DataFileError(archiveLabel, `corrupt gzip data (${(err as Error).message})`);
  }
  return writeEntries(readTarEntries(tar, archiveLabel), destDir, archiveLabel);
}

/**
 * The script of the page a coordinator serves at /protofed/join: a client of a remote run in a
 * web browser. It runs the same code as `protofed client` (joinRun, ClientNode,
 * SocketCoordinatorLink); only the host differs: the data comes from a folder the user picks or
 * from the coordinator's dataset pack, the backbone runs on tfjs in the page (wasm, else cpu), and
 * embeddings stay in memory. The coordinator bundles this file with esbuild
 * (coordinator/join/browser-bundle.ts).
 *
 * The client's id and key come in the URL fragment, which the browser never sends to a server:
 * `/protofed/join#client=c2&key=<secret>` (or typed into the page).
 */
import { CODEC_CAPABILITIES } from '../../shared/protocol/codecs/codec-spec.js';
import { decodeDatasetPack } from '../../shared/datasets/dataset-pack.js';
import type { LabelledDataset } from '../../shared/datasets/labelled-dataset.js';
import { Embeddings } from '../../shared/embedding/embeddings.js';
import { isLearningTraffic, unpackU32 } from '../../shared/protocol/messages.js';
import { DATASET_PACK_PATH, type RunSetup } from '../../shared/protocol/run-setup.js';
import { SocketCoordinatorLink, type CoordinatorLink } from '../coordinator-link.js';
import { clientHeaders, fetchRunSetup, joinRun } from '../remote-join.js';
import { browserBackbone, selectBrowserBackend } from './browser-backbone.js';
import { ObservedLink } from './observed-link.js';
import { readPickedFolder, type PickedFile } from './picked-folder.js';

const WASM_PATH = '/protofed/join/wasm/';
/** What this client offers in its hello: everything but deflate, which needs Node's zlib. */
const BROWSER_CODECS = CODEC_CAPABILITIES.filter((c) => c !== 'deflate');

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const base = location.origin;

interface MissionRow {
  classes: number[];
  before?: number;
  after?: number;
  row: HTMLTableRowElement;
}

/** What the page shows, kept up to date from the link and the fetches. */
class ClientView {
  setupBytes = 0;
  private link: CoordinatorLink | undefined;
  private classNames: string[] = [];
  private readonly learned = new Set<number>();
  private readonly missions = new Map<number, MissionRow>();

  state(state: 'waiting' | 'joining' | 'running' | 'finished' | 'failed', text: string): void {
    document.body.dataset.state = state;
    $('status').textContent = text;
  }

  fail(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    $('error').textContent = message;
    $('error').hidden = false;
    this.state('failed', 'stopped: see the error below');
    this.log(`error: ${message}`);
  }

  log(line: string): void {
    const log = $('log');
    log.textContent += `${new Date().toISOString().slice(11, 19)} ${line}\n`;
    log.scrollTop = log.scrollHeight;
  }

  watch(link: CoordinatorLink, classNames: string[]): void {
    this.link = link;
    this.classNames = classNames;
    this.bytes();
  }

  mission(mission: number, classes: number[]): void {
    for (const c of classes) this.learned.add(c);
    const row = document.createElement('tr');
    row.dataset.mission = String(mission);
    for (let i = 0; i < 6; i++) row.append(document.createElement('td'));
    $('missions').querySelector('tbody')!.append(row);
    this.missions.set(mission, { classes, row });
    $('classes').textContent = [...this.learned].sort((a, b) => a - b).map((c) => this.className(c)).join(', ');
    this.render(mission);
  }

  accuracy(mission: number, phase: string, correct: number, total: number): void {
    const m = this.missions.get(mission);
    if (!m || total === 0) return;
    if (phase === 'before-merge') m.before = correct / total;
    else m.after = correct / total;
    this.render(mission);
  }

  bytes(): void {
    if (!this.link) return;
    const up = this.link.meter.totals('up');
    const down = this.link.meter.totals('down');
    const learning = (d: 'up' | 'down'): number => this.link!.meter.totals(d, isLearningTraffic).encodedBytes;
    $('bytes').textContent = `${fmt(up.encodedBytes)} up, ${fmt(down.encodedBytes)} down in ${up.messages + down.messages} messages ` +
      `(learning traffic ${fmt(learning('up'))} up, ${fmt(learning('down'))} down)`;
    $('bytes').dataset.learningUp = String(learning('up'));
    $('bytes').dataset.learningDown = String(learning('down'));
  }

  setup(bytes: number): void {
    this.setupBytes += bytes;
    $('setup-bytes').textContent = fmt(this.setupBytes);
    $('setup-bytes').dataset.bytes = String(this.setupBytes);
  }

  private render(mission: number): void {
    const m = this.missions.get(mission)!;
    const cells = m.row.children;
    const totals = this.link?.meter;
    cells[0]!.textContent = String(mission + 1);
    cells[1]!.textContent = m.classes.map((c) => this.className(c)).join(', ');
    cells[2]!.textContent = m.before === undefined ? '…' : m.before.toFixed(4);
    cells[3]!.textContent = m.after === undefined ? '…' : m.after.toFixed(4);
    cells[4]!.textContent = totals ? fmt(totals.totals('up').encodedBytes) : '';
    cells[5]!.textContent = totals ? fmt(totals.totals('down').encodedBytes) : '';
  }

  private className(c: number): string {
    return this.classNames[c] === undefined ? String(c) : `${c} ${this.classNames[c]}`;
  }
}

function fmt(bytes: number): string {
  if (bytes < 10_000) return `${bytes} B`;
  if (bytes < 10_000_000) return `${(bytes / 1000).toFixed(1)} kB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

const view = new ClientView();

/** fetch, counting what the coordinator sent (its Content-Length: what went over the wire, compressed or not) as setup traffic. */
const countingFetch: typeof fetch = async (input, init) => {
  const response = await fetch(input, init);
  const body = await response.arrayBuffer();
  view.setup(Number(response.headers.get('content-length') ?? body.byteLength));
  return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
};

/** The id and key from the fragment (#client=c2&key=…) or the form. */
function credentials(): { clientId: string; token: string } {
  const clientId = ($('client-id') as HTMLInputElement).value.trim();
  const token = ($('client-key') as HTMLInputElement).value.trim();
  if (!clientId || !token) throw new Error('this page needs a client id and its key (from the run\'s keys file, made by `protofed keys`): open it as /protofed/join#client=<id>&key=<key>, or type them in');
  return { clientId, token };
}

/** Decodes one picked image to RGBA at its own size, without colour conversion. */
async function decodeInCanvas(file: PickedFile): Promise<{ width: number; height: number; rgba: Uint8Array }> {
  const bitmap = await createImageBitmap(file as unknown as Blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext('2d', { willReadFrequently: true })!;
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height, { colorSpace: 'srgb' });
  return { width: pixels.width, height: pixels.height, rgba: new Uint8Array(pixels.data.buffer) };
}

type DataChoice = { kind: 'pack' } | { kind: 'folder'; files: PickedFile[] };

async function loadData(setup: RunSetup, choice: DataChoice, clientId: string, token: string): Promise<LabelledDataset> {
  if (choice.kind === 'pack') {
    view.state('joining', `loading the run's dataset pack (${setup.datasetCopy.train} train and ${setup.datasetCopy.test} test images) from the coordinator: counted as this client's setup traffic`);
    const response = await countingFetch(`${base}${DATASET_PACK_PATH}`, { headers: clientHeaders(clientId, token) });
    if (!response.ok) throw new Error(`the coordinator answered ${response.status} for its dataset pack: ${await response.text()}`);
    return decodeDatasetPack(new Uint8Array(await response.arrayBuffer()), `${base}${DATASET_PACK_PATH}`);
  }
  view.state('joining', `reading ${choice.files.length} picked files`);
  const data = await readPickedFolder(choice.files, {
    size: setup.dataset.size, channels: setup.dataset.channels ?? 3, decode: decodeInCanvas,
  });
  if (setup.dataset.name !== 'image-folder') {
    throw new Error(`this run uses the ${setup.dataset.name} dataset; a picked folder is read as an image folder (one folder per class), so it can only be the data of a run on an image-folder dataset. Load the run's dataset pack instead`);
  }
  return data;
}

async function join(choice: DataChoice): Promise<void> {
  const { clientId, token } = credentials();
  for (const b of document.querySelectorAll<HTMLButtonElement | HTMLInputElement>('.choice')) b.disabled = true;
  $('error').hidden = true;
  view.state('joining', 'fetching the run\'s setup');
  let tensorBackend: string | undefined;
  let link: ObservedLink | undefined;
  await joinRun({
    url: base, clientId, token, get: countingFetch, codecs: BROWSER_CODECS,
    log: (line) => view.log(line),
    loadData: (setup) => loadData(setup, choice, clientId, token),
    createBackbone: async (spec, shape, backend, headers, get) => {
      const selected = await selectBrowserBackend(WASM_PATH, backend);
      tensorBackend = selected.backend;
      $('backend').textContent = `${selected.backend} (the run's setting: ${backend})${selected.note ? `: ${selected.note}` : ''}`;
      $('backend').dataset.backend = selected.backend;
      view.state('joining', spec.name === 'pixels' ? 'building the pixels backbone' : 'fetching the run\'s model from the coordinator (setup traffic)');
      return browserBackbone(spec, shape, selected.backend, headers, get);
    },
    embeddings: (backbone, data) => new Embeddings(backbone, data),
    link: (url) => link = new ObservedLink(new SocketCoordinatorLink(url, { firstDelayMs: 500, maxDelayMs: 10_000, giveUpAfterMs: 600_000, log: (l) => view.log(l) }), {
      connected: () => view.log('connected to the coordinator'),
      received: (type, message) => {
        if (type === 'mission') {
          const m = message as { mission: number; assignment: { classId: number }[] };
          view.mission(m.mission, m.assignment.map((a) => a.classId));
          view.state('running', `learning mission ${m.mission + 1}`);
        } else if (type === 'welcome') {
          view.state('running', 'joined the run; waiting for a mission');
        } else if (type === 'refused') {
          view.log(`refused: ${(message as { reason: string }).reason}`);
        }
        view.bytes();
      },
      sent: (type, body) => {
        if (type === 'report') {
          const r = body as unknown as { mission: number; phase: string; correct: Uint8Array; total: Uint8Array };
          const sum = (packed: Uint8Array): number => unpackU32(packed).reduce((a, b) => a + b, 0);
          view.accuracy(r.mission, r.phase, sum(r.correct), sum(r.total));
        }
        view.bytes();
      },
    }),
    onReady: ({ data, backbone }) => {
      view.watch(link!, data.classNames);
      $('data').textContent = `${data.name} (${data.kind}): ${data.train.count} train and ${data.test.count} test images of ${data.train.rows}×${data.train.cols}×${data.train.channels}, ${data.classNames.length} classes`;
      $('model').textContent = `${backbone.name}, ${backbone.dim}-d, on ${tensorBackend ?? '?'}`;
      view.log(`model hash ${backbone.modelHash} matches the coordinator's`);
    },
  });
  view.state('finished', 'the run is over');
}

/** Shows the run's dataset and what the pack costs before the user chooses (setup needs the key). */
async function describe(): Promise<void> {
  const { clientId, token } = credentials();
  const setup = await fetchRunSetup(base, clientId, token, countingFetch);
  $('run').textContent = `dataset ${setup.dataset.name}${setup.dataset.size ? ` at ${setup.dataset.size}×${setup.dataset.size}` : ''}, ` +
    `backbone ${setup.backbone.name}, codecs ${setup.uplinkCodec} up and ${setup.downlinkCodec} down`;
}

function start(): void {
  const fragment = new URLSearchParams(location.hash.slice(1));
  ($('client-id') as HTMLInputElement).value = fragment.get('client') ?? '';
  ($('client-key') as HTMLInputElement).value = fragment.get('key') ?? '';
  const guard = (f: () => Promise<void>) => () => {
    f().catch((err: unknown) => {
      view.fail(err);
      for (const b of document.querySelectorAll<HTMLButtonElement | HTMLInputElement>('.choice')) b.disabled = false;
    });
  };
  $('use-pack').addEventListener('click', guard(() => join({ kind: 'pack' })));
  $('folder').addEventListener('change', guard(() => join({ kind: 'folder', files: [...(($('folder') as HTMLInputElement).files ?? [])] })));
  view.state('waiting', 'choose the data of this client');
  if (fragment.get('client') && fragment.get('key')) guard(describe)();
}

// The page's state for whoever drives it (a test): waiting, joining, running, finished or failed.
window.addEventListener('error', (e) => view.fail(e.error ?? e.message));
window.addEventListener('unhandledrejection', (e) => view.fail(e.reason));
start();

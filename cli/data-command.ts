import type { Command } from 'commander';
import { registerGlyphsCommand } from './glyphs-command.js';
import { fetchDataset } from '../shared/datasets/dataset-fetch.js';
import { KNOWN_DATASETS, describeDataset, listDatasets, type DatasetInfo, type DatasetListing } from '../shared/datasets/dataset-info.js';
import { protofedDataDir } from '../shared/datasets/data-home.js';
import { formatBytes } from './format.js';

/**
 * The `data list` table: one row per known dataset, present or not, and where.
 *
 * @example
 * process.stdout.write(`${formatDatasetList(listDatasets())}\n`);
 */
export function formatDatasetList(listings: DatasetListing[]): string {
  const rows = listings.map((d) => [
    d.name,
    d.present ? `yes (${d.kind})` : 'no',
    d.present ? d.dir! : `not in ${d.searched.join(', ')}${d.fetchable ? ` (protofed data fetch ${d.name})` : ''}`,
  ]);
  const header = ['dataset', 'present', 'where'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < cells.length - 1 ? c.padEnd(widths[i]!) : c)).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

/**
 * The `data info` summary, one field a line.
 *
 * @example
 * formatDatasetInfo(describeDataset('/data/omniglot')); // 'format     omniglot\n...'
 */
export function formatDatasetInfo(info: DatasetInfo): string {
  const { rows, cols, channels } = info.imageSize;
  const { min, max, mean } = info.imagesPerClass;
  const lines: [string, string][] = [
    ['format', info.format],
    ['source', info.source],
    ['classes', String(info.classes)],
    ['images', `${info.images} (${info.train} train / ${info.test} test)`],
    ['image size', `${rows}x${cols}x${channels}`],
    ['per class', `min ${min}, max ${max}, mean ${Number.isInteger(mean) ? mean : mean.toFixed(1)}`],
    ['splits', info.splits.length > 0 ? info.splits.join(', ') : '(none: split by fraction per class)'],
  ];
  if (info.groups !== undefined) lines.push(['groups', String(info.groups)]);
  return lines.map(([k, v]) => `${k.padEnd(11)}${v}`).join('\n');
}

/**
 * Adds `data list`, `data info DIR [--json]` and `data fetch NAME [--dir D]` to the protofed program.
 * Failures throw; the top-level handler prints `protofed: <message>` and exits 1.
 *
 * @example
 * const program = new Command('protofed');
 * registerDataCommands(program);
 * await program.parseAsync(['node', 'protofed', 'data', 'info', '/data/omniglot', '--json']);
 */
export function registerDataCommands(program: Command): void {
  const data = program.command('data').description('list, inspect, download and generate datasets');
  registerGlyphsCommand(data);

  data
    .command('list')
    .description('known datasets, whether each is present, and where')
    .option('--json', 'print one JSON array')
    .action((options: { json?: boolean }) => {
      const listings = listDatasets();
      process.stdout.write(options.json ? `${JSON.stringify(listings)}\n` : `${formatDatasetList(listings)}\n`);
    });

  data
    .command('info')
    .description('detect a dataset folder\'s format and summarise it (classes, images, splits, image size)')
    .argument('<dir>', 'dataset folder')
    .option('--json', 'print one JSON object')
    .action((dir: string, options: { json?: boolean }) => {
      const info = describeDataset(dir);
      process.stdout.write(options.json ? `${JSON.stringify(info)}\n` : `${formatDatasetInfo(info)}\n`);
    });

  data
    .command('fetch')
    .description(`download and verify a dataset (${KNOWN_DATASETS.filter((d) => d.fetchable).map((d) => d.name).join(', ')})`)
    .argument('<name>', 'dataset name')
    .option('-d, --dir <dir>', 'destination folder (default: $PROTOFED_DATA/<name> or ~/.cache/protofed/data/<name>)')
    .action(async (name: string, options: { dir?: string }) => {
      const known = KNOWN_DATASETS.find((d) => d.name === name);
      const dir = options.dir ?? protofedDataDir(name);
      if (known && !known.fetchable) {
        throw new Error(`${name} cannot be downloaded automatically (its images are ImageNet's, under ImageNet's terms); put it in ${dir} by hand`);
      }
      const result = await fetchDataset(name, { destDir: dir, log: (line) => process.stderr.write(`protofed: ${line}\n`) });
      const downloaded = result.files.filter((f) => !f.reused);
      const bytes = downloaded.reduce((n, f) => n + f.bytes, 0);
      process.stdout.write(
        `${result.name}: ${downloaded.length} file(s) downloaded (${formatBytes(bytes)}), ${result.files.length - downloaded.length} already there, ` +
          `${result.extracted.length} unpacked; SHA-256 verified; in ${result.dir}\n`,
      );
    });
}

import { statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { GLYPH_DEFAULTS } from '../shared/datasets/glyph-defaults.js';
import { loadGlyphGenerator } from '../shared/datasets/glyph-tools.js';
import type { GlyphProgress } from '../shared/datasets/glyph-generator.js';
import { writeImagePack } from '../shared/datasets/image-pack.js';
import { formatBytes } from './format.js';

export interface GlyphsCommandOptions {
  out: string;
  seed: string;
  size: string;
  instances: string;
  format: string;
  scripts?: string;
  quiet?: boolean;
}

function positiveInt(value: string, flag: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag} must be an integer ≥ ${min}, got "${value}"`);
  return n;
}

/**
 * `protofed data glyphs --out DIR`: renders the glyph benchmark as an image pack (or in the Omniglot
 * layout) and writes a README.md with the command, statistics and credits, and a contact sheet.
 *
 * @example
 * glyphsCommand({ out: 'data/glyphs-28', seed: '1', size: '28', instances: '20', format: 'pack' });
 */
export async function glyphsCommand(options: GlyphsCommandOptions): Promise<void> {
  const { generateGlyphDataset, glyphReadme, renderContactSheet, writeOmniglotLayout } = await loadGlyphGenerator('protofed data glyphs renders');
  const seed = positiveInt(options.seed, '--seed', 0);
  const size = positiveInt(options.size, '--size', 8);
  const instances = positiveInt(options.instances, '--instances', 2);
  const format = options.format;
  if (format !== 'pack' && format !== 'omniglot') throw new Error(`--format must be "pack" or "omniglot", got "${format}"`);
  const scripts = options.scripts?.split(',').map((s) => s.trim()).filter(Boolean);
  const outDir = resolve(options.out);
  const say = (line: string): void => {
    if (!options.quiet) process.stdout.write(`${line}\n`);
  };

  const bar = options.quiet
    ? undefined
    : new cliProgress.SingleBar({ format: '{phase} |{bar}| {value}/{total} | {eta_formatted} left', hideCursor: true }, cliProgress.Presets.shades_classic);
  let phase: GlyphProgress['phase'] | undefined;
  const onProgress = (p: GlyphProgress): void => {
    if (!bar) return;
    if (p.phase !== phase) {
      if (phase) bar.stop();
      phase = p.phase;
      bar.start(p.total, 0, { phase: p.phase.padEnd(9) });
    }
    // Redrawing on every glyph costs more than the glyph; cli-progress throttles, but skip most calls anyway.
    if (p.done === p.total || p.done % 25 === 0) bar.update(p.done);
  };
  const started = performance.now();
  const dataset = generateGlyphDataset({ seed, size, instances, ...(scripts ? { scripts } : {}), onProgress });
  bar?.stop();

  const command = [
    'npx protofed data glyphs',
    `--out ${options.out}`,
    ...(seed !== GLYPH_DEFAULTS.seed ? [`--seed ${seed}`] : []),
    ...(size !== GLYPH_DEFAULTS.size ? [`--size ${size}`] : []),
    ...(instances !== GLYPH_DEFAULTS.instances ? [`--instances ${instances}`] : []),
    ...(format !== 'pack' ? [`--format ${format}`] : []),
    ...(options.scripts ? [`--scripts '${options.scripts}'`] : []),
  ].join(' ');
  if (format === 'pack') {
    writeImagePack(outDir, dataset);
  } else {
    writeOmniglotLayout(outDir, dataset);
  }
  writeFileSync(join(outDir, 'README.md'), glyphReadme(dataset, command, format));
  writeFileSync(join(outDir, 'contact-sheet.png'), renderContactSheet(dataset));

  const g = dataset.meta.generator;
  say(`${dataset.classNames.length} classes from ${g.backgroundAlphabets.length + g.evaluationAlphabets.length} alphabets ` +
    `(${g.backgroundAlphabets.length} background with ${dataset.baseClasses.length} classes, ${g.evaluationAlphabets.length} evaluation), ` +
    `${instances} instances each at ${size}×${size}, in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  for (const s of g.scripts) {
    const dropped = s.dropped.notCovered + s.dropped.empty + s.dropped.missingGlyphBox;
    if (dropped > 0 || s.classes === 0) {
      say(`  ${s.name}: ${s.classes} classes; dropped ${dropped} (not in font ${s.dropped.notCovered}, empty ${s.dropped.empty}, missing-glyph box ${s.dropped.missingGlyphBox}), ${s.duplicates} same-shape`);
    }
  }
  if (format === 'pack') {
    const bytes = ['images.idx.gz', 'labels.idx.gz', 'split.idx.gz', 'dataset.json'].reduce((n, f) => n + statSync(join(outDir, f)).size, 0);
    say(`image pack: ${outDir} (${formatBytes(bytes)})`);
  } else {
    say(`Omniglot layout: ${outDir}/images_background, ${outDir}/images_evaluation`);
  }
}

/**
 * Adds `glyphs` to the `protofed data` command.
 *
 * @example
 * const data = program.command('data').description('make and inspect datasets');
 * registerGlyphsCommand(data);
 * // protofed data glyphs --out data/glyphs-28
 */
export function registerGlyphsCommand(data: Command): void {
  data
    .command('glyphs')
    .description('render the many-class glyph benchmark (Omniglot-style letters of 40+ scripts from the bundled Noto fonts)')
    .requiredOption('-o, --out <dir>', 'output folder')
    .option('--seed <n>', 'seed of every random choice; the same seed gives byte-identical output', String(GLYPH_DEFAULTS.seed))
    .option('--size <px>', 'image side in pixels', String(GLYPH_DEFAULTS.size))
    .option('--instances <n>', 'instances ("drawers") per class; the last quarter are test images', String(GLYPH_DEFAULTS.instances))
    .option('--format <format>', '"pack" (protofed image pack) or "omniglot" (images_background/<Alphabet>/characterNN/*.png)', 'pack')
    .option('--scripts <names>', 'comma-separated subset of scripts, e.g. "Greek,Runic" (default: all)')
    .option('-q, --quiet', 'print nothing but errors')
    .action(glyphsCommand);
}

import { readFileSync } from 'node:fs';
import { packageRoot } from './data-home.js';

/**
 * The glyph generator renders with @napi-rs/canvas and the Noto fonts (@fontsource/*): 104 MB that
 * no run needs, so they are development dependencies. Without them, says what to install.
 *
 * @example
 * const { renderGlyphClasses } = await loadGlyphGenerator('protofed data glyphs renders');
 */
export async function loadGlyphGenerator(who: string): Promise<typeof import('./glyph-generator.js')> {
  try {
    return await import('./glyph-generator.js');
  } catch (err) {
    if ((err as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new Error(`${who} with packages that a run does not need, so they are not installed: ${(err as Error).message}\n` +
      `In the protofed folder, run \`npm install --include=dev\`, or add them: npm install --no-save ${glyphToolPackages().join(' ')}`);
  }
}

/** The packages the glyph generator needs, as protofed's package.json pins them. */
export function glyphToolPackages(): string[] {
  const pkg = JSON.parse(readFileSync(`${packageRoot() ?? '.'}/package.json`, 'utf8')) as { devDependencies?: Record<string, string> };
  return Object.entries(pkg.devDependencies ?? {})
    .filter(([name]) => name === '@napi-rs/canvas' || name.startsWith('@fontsource/'))
    .map(([name, version]) => `${name}@${version}`);
}

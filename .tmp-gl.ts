import { glyphsCommand } from './cli/glyphs-command.js';
const [out, scripts, size, format] = process.argv.slice(2);
glyphsCommand({ out: out!, seed: '1', size: size ?? '28', instances: '20', format: format ?? 'pack', ...(scripts && scripts !== 'all' ? { scripts } : {}), quiet: false });

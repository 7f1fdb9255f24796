import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { ScenarioError } from '../shared/scenario-config.js';
import { DataFileError } from '../shared/datasets/idx.js';
import { runCommand } from './run-command.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('protofed')
  .description('Federated continual learning with prototype exchange: simulate, deploy, and count every byte.')
  .version(pkg.version);

program
  .command('run')
  .description('run a scenario: a coordinator and its client processes, every mission, and a results folder')
  .argument('<scenario>', 'scenario file (YAML), e.g. scenarios/fashion-mnist.yaml')
  .option('-o, --out <dir>', 'results folder (default: results/<scenario>-<time>)')
  .option('-d, --data <dir>', 'dataset folder to use instead of the scenario\'s (or "embedded" for the copy in the repo)')
  .option('-q, --quiet', 'print nothing but errors')
  .action(runCommand);

program.parseAsync(process.argv).catch((err: unknown) => {
  const known = err instanceof ScenarioError || err instanceof DataFileError;
  process.stderr.write(`protofed: ${known ? (err as Error).message : (err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

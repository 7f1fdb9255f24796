import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../shared/datasets/data-home.js';
import { BACKEND_CHOICES } from '../shared/tensor/tensor-backend.js';
import { registerDataCommands } from './data-command.js';
import { forgetCommand } from './forget-command.js';
import { keysCommand } from './keys-command.js';
import { clientCommand, coordinatorCommand } from './remote-commands.js';
import { reportCommand, sweepCommand } from './sweep-command.js';
import { pretrainCommand } from './pretrain-command.js';
import { runCommand } from './run-command.js';

const pkg = JSON.parse(readFileSync(join(packageRoot() ?? '.', 'package.json'), 'utf8')) as { version: string };

const program = new Command()
  .name('protofed')
  .description('Federated continual learning with prototype exchange: simulate, deploy, and count every byte.')
  .version(pkg.version);

program
  .command('run')
  .description('run a scenario: a coordinator and its client processes, every mission, and a results folder')
  .argument('[scenario]', 'scenario file (YAML), e.g. scenarios/fashion-mnist.yaml (none with --resume)')
  .option('-o, --out <dir>', 'results folder (default: results/<scenario>-<time>); it must not hold a run already')
  .option('--resume <dir>', 'go on with the run saved in this results folder, after a crash or kill')
  .option('--force', 'replace a run already in --out')
  .option('-d, --data <dir>', 'dataset folder to use instead of the scenario\'s (or "embedded" for the copy in the repo)')
  .addOption(new Option('-b, --backend <name>', 'tensor backend for learned backbones').choices([...BACKEND_CHOICES]))
  .option('--pixels', 'use the pixels backbone instead of the scenario\'s (the baseline on the same classes and samples)')
  .addOption(new Option('-m, --mode <mode>', 'how clients run: forked processes over socket.io, or virtual clients in this process').choices(['process', 'virtual']))
  .option('-q, --quiet', 'print nothing but errors')
  .option('--json', 'print one JSON object per event on stdout (start, mission, finished, error) instead of the table')
  .option('--dashboard', 'serve a live dashboard of the run on the coordinator\'s port and print its URL')
  .action(runCommand);

program
  .command('pretrain')
  .description('episodic ProtoNet pretraining of conv4 on the scenario\'s base classes; resumes from a checkpoint in --out')
  .argument('<scenario>', 'scenario file whose dataset (and base classes) to train on')
  .option('-o, --out <dir>', 'model folder (default: the scenario\'s backbone.weights)')
  .option('-d, --data <dir>', 'dataset folder to use instead of the scenario\'s')
  .option('-e, --episodes <n>', 'number of episodes (default: the scenario\'s pretrain.episodes, else 2000)')
  .addOption(new Option('-b, --backend <name>', 'tensor backend').choices([...BACKEND_CHOICES]))
  .addOption(new Option('--engine <name>', 'how steps are computed: fused (hand-written BatchNorm/pool/loss passes; default on wasm and cpu) or autodiff (tfjs gradients; default on tfjs-node); both learn the same').choices(['fused', 'autodiff']))
  .option('-t, --threads <n>', 'worker threads that split each episode, for the fused engine (default 1; more pays off only on otherwise idle cores)')
  .option('-q, --quiet', 'print nothing but errors')
  .action(pretrainCommand);

program
  .command('coordinator')
  .description('run a scenario with clients on other hosts: listen, wait for them, run every mission, write the results')
  .option('-s, --scenario <file>', 'scenario file (none with --resume)')
  .option('--resume <dir>', 'go on with the run saved in this results folder: clients of that run reconnect and carry on')
  .option('--force', 'replace a run already in --out')
  .option('--host <address>', 'address to listen on', '127.0.0.1')
  .option('-p, --port <port>', 'port to listen on (0: any free port)', '0')
  .requiredOption('--keys <file>', 'the clients\' keys (made by protofed keys): one secret per client id')
  .option('--tls-cert <file>', 'serve clients over TLS with this certificate (PEM); needs --tls-key')
  .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
  .option('--tls-client-ca <file>', 'mutual TLS: every client presents a certificate signed by this authority (PEM) whose common name is its id')
  .option('-o, --out <dir>', 'results folder')
  .option('--wait-ms <ms>', 'how long to wait for all clients to connect (default: the scenario\'s timeouts.connectMs)')
  .option('-q, --quiet', 'print nothing but errors')
  .option('--json', 'print one JSON object per event on stdout (start, mission, finished, error) instead of the table')
  .option('--dashboard', 'serve a live dashboard of the run on this port and print its URL')
  .action(coordinatorCommand);

program
  .command('client')
  .description('join a coordinator as one client: load the data here, learn, send prototype updates')
  .requiredOption('-c, --connect <url>', 'the coordinator, e.g. http://169.254.10.1:4000')
  .requiredOption('-i, --id <id>', 'this client\'s id (c0, c1, …)')
  .option('-k, --key-file <file>', 'this client\'s key: a file holding it alone, or the keys file (its line is used); default: the PROTOFED_KEY environment variable')
  .option('--ca <file>', 'trust this certificate authority (PEM) for an https coordinator, e.g. its self-signed certificate')
  .option('--tls-cert <file>', 'this client\'s certificate (PEM), for a coordinator that requires mutual TLS; needs --tls-key')
  .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
  .option('-d, --data <dir>', 'dataset folder on this host (default: the usual places)')
  .addOption(new Option('-b, --backend <name>', 'tensor backend').choices([...BACKEND_CHOICES]))
  .option('--no-cache', 'do not cache embeddings on disk')
  .option('--give-up-after <seconds>', 'how long to keep reconnecting to a coordinator that went away', '600')
  .action(clientCommand);

program
  .command('forget')
  .description('unlearn one client exactly: everything it contributed leaves the table, in a running coordinator or in a saved run')
  .argument('<dir>', 'the run\'s results folder')
  .requiredOption('--client <id>', 'the client to forget, e.g. c3')
  .option('--ca <file>', 'trust this certificate authority (PEM) to reach a coordinator served over TLS')
  .action(forgetCommand);

program
  .command('keys')
  .description('make one secret key per client id, for a coordinator and clients on other hosts')
  .requiredOption('--clients <ids>', 'client ids, e.g. c0..c9 or alice,bob')
  .requiredOption('-o, --out <file>', 'the keys file to write (readable by you only)')
  .option('--force', 'replace an existing keys file')
  .action(keysCommand);

program
  .command('sweep')
  .description('run a grid of codecs, strategies, shots and seeds on all cores; write sweep.csv and an HTML report')
  .argument('<scenario>', 'the scenario every run starts from')
  .option('--codec <list>', 'codecs, e.g. f32,int8,int4-b32 (used up and down)')
  .option('--strategy <list>', 'strategies, e.g. protofed,fedrecon-reference,local-only')
  .option('--seeds <range>', 'seeds, e.g. 1..5 or 1,4,9')
  .option('--shots <list>', 'shots per class per mission, e.g. 2,5,30')
  .option('-o, --out <dir>', 'sweep folder (default: sweeps/<scenario>)')
  .option('-j, --jobs <n>', 'runs at a time (default: one per core)')
  .addOption(new Option('-m, --mode <mode>', 'how each run\'s clients run').choices(['process', 'virtual']))
  .option('--json', 'print one JSON object per event on stdout (start, run, finished, error)')
  .action(sweepCommand);

program
  .command('report')
  .description('re-render a sweep\'s report.html and sweep.csv from its runs')
  .argument('<dir>', 'a sweep folder')
  .action(reportCommand);

registerDataCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  // Expected failures (bad scenario, bad data, a client that cannot be replaced) print their message;
  // PROTOFED_DEBUG=1 adds the stack.
  const message = err instanceof Error ? err.message : String(err);
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify({ event: 'error', message })}\n`);
  process.stderr.write(`protofed: ${message}\n`);
  if (process.env.PROTOFED_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});

/** hedge-ledger: the command-line entry point. */
import { ConfigError } from '../config.ts';
import { isStoreError } from '../eventstore/errors.ts';
import { UsageError } from './context.ts';
import { outputFailure } from './output.ts';
type Command = (argv: string[]) => Promise<void>;

/** The demo runs a local chain: it needs the development dependencies anvil and solc, which the container image leaves out. */
const devOnly = (e: unknown): never => {
  const { code, message } = e as NodeJS.ErrnoException;
  const missing = (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') && /'(solc|@foundry-rs\/anvil)[/']/.test(message);
  if (!missing) throw e;
  throw new UsageError('demo needs the development dependencies (anvil, solc), which this installation leaves out: run it from a checkout after npm ci');
};

/** Each command's module loads only when that command runs: `positions` never pulls in viem or the broker. */
const commands: Record<string, { load: () => Promise<Command>; help: string }> = {
  demo: {
    load: async () => {
      const { demo } = await import('./commands/demo.ts').catch(devOnly);
      return (argv) => demo(argv).catch(devOnly);
    },
    help: 'demo [--duration s] [--seed n] [--store <empty store>]   the whole service on a local chain with random trades (npm start)' },
  'ingest-file': { load: async () => (await import('./commands/ingest-file.ts')).ingestFile, help: 'ingest-file <logs.jsonl> --tokens <tokens.json> [--json]   append eth_getLogs logs from a file' },
  ingest: { load: async () => (await import('./commands/ingest.ts')).ingest, help: 'ingest [--json]                                     ingest chain logs up to the confirmed head, then exit' },
  run: { load: async () => (await import('./commands/run.ts')).run, help: 'run [--once [--json]] [--broker paper|schwab] [--roles …]   the service; --once: accumulate and execute until nothing is open' },
  replay: { load: async () => (await import('./commands/replay.ts')).replay, help: 'replay [--json]                                     rebuild every projection from scratch' },
  positions: { load: async () => (await import('./commands/queries.ts')).positions, help: 'positions [--json]                                  net exposure per symbol' },
  hedges: { load: async () => (await import('./commands/queries.ts')).hedges, help: 'hedges [--json]                                     hedge commands and their outcomes' },
  trades: { load: async () => (await import('./commands/queries.ts')).trades, help: 'trades [--json]                                     onchain fills of our orders' },
  rejected: { load: async () => (await import('./commands/queries.ts')).rejected, help: 'rejected [--json]                                   logs that yielded no fill, with the reason' },
  resume: { load: async () => (await import('./commands/resume.ts')).resume, help: 'resume <SYMBOL> --reason <text> [--force] [--json]   let a halted symbol hedge again (appends HedgingResumed)' },
  auth: { load: async () => (await import('./commands/auth.ts')).auth, help: 'auth login | auth status [--check] [--json]         log in to Schwab; show how long the tokens last (--check: ask Schwab)' },
  'schwab-sim': { load: async () => (await import('./commands/schwab-sim.ts')).schwabSim, help: 'schwab-sim [--port N] [--host H] [--start T] [--always-open]   run the Schwab simulator until Ctrl-C' },
};

const usage = () =>
  [
    'usage: hedge-ledger <command> [options]',
    '',
    ...Object.values(commands).map((c) => `  ${c.help}`),
    '',
    'every command: --store <url> (env LEDGER_STORE, default sqlite:./data/ledger.db), --config <file> (env LEDGER_CONFIG)',
  ].join('\n');

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  // No command is bad usage: the usage goes with the other refusals, to stderr (stdout is for a command's output).
  if (name === undefined) {
    process.stderr.write(`${usage()}\n`);
    return 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`unknown command ${JSON.stringify(name)}\n\n${usage()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`usage: hedge-ledger ${command.help}\n`);
    return 0;
  }
  try {
    await (await command.load())(rest);
    return 0;
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) {
      process.stderr.write(`hedge-ledger ${name}: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`hedge-ledger ${name}: ${isStoreError(e) ? `${e.kind}: ` : ''}${(e as Error).message ?? String(e)}\n`);
    if (process.env['LEDGER_DEBUG']) process.stderr.write(`${(e as Error).stack}\n`);
    return 1;
  }
}

// A reader that went away (`… | head`) ends the output; a command that changes the ledger still completes what it
// does, while a query, whose only product is its output, stops. Any other failure to write (a full disk) ends the
// output too, but then the command fails, saying why in one line.
process.exitCode = await main(process.argv.slice(2));
await new Promise((resolve) => setImmediate(resolve)); // the last write's error comes a tick later
const unwritten = outputFailure();
if (unwritten !== undefined) {
  process.stderr.write(`hedge-ledger ${process.argv[2]}: could not write the output: ${unwritten.message}\n`);
  if (process.exitCode === 0) process.exitCode = 1;
}

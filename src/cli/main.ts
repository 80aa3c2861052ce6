/** hedge-ledger: the command-line entry point. */
import { ConfigError } from '../config.ts';
import { isStoreError } from '../eventstore/errors.ts';
import { UsageError } from './context.ts';
import { ingestFile } from './commands/ingest-file.ts';
import { hedges, positions, rejected, trades } from './commands/queries.ts';
import { replay } from './commands/replay.ts';
import { run } from './commands/run.ts';
import { demo } from './commands/demo.ts';

const commands: Record<string, { run: (argv: string[]) => Promise<void>; help: string }> = {
  demo: { run: demo, help: 'demo                                                the example session on a throwaway ledger (npm start)' },
  'ingest-file': { run: ingestFile, help: 'ingest-file <logs.jsonl> --tokens <tokens.json>   append eth_getLogs logs from a file' },
  run: { run, help: 'run --once [--broker paper]                         accumulate and execute until nothing is open' },
  replay: { run: replay, help: 'replay [--json]                                     rebuild every projection from scratch' },
  positions: { run: positions, help: 'positions [--json]                                  net exposure per symbol' },
  hedges: { run: hedges, help: 'hedges [--json]                                     hedge commands and their outcomes' },
  trades: { run: trades, help: 'trades [--json]                                     onchain fills of our orders' },
  rejected: { run: rejected, help: 'rejected [--json]                                   logs that yielded no fill, with the reason' },
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
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
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
    await command.run(rest);
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

process.exitCode = await main(process.argv.slice(2));

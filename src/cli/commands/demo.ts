/**
 * demo: the main job on the embedded default, with no configuration. Ingests the example
 * logs shipped in docs/example into a fresh SQLite ledger, runs the accumulator and the
 * paper broker until nothing is open, and prints positions and hedges.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from '../context.ts';
import { ingestFile } from './ingest-file.ts';
import { run } from './run.ts';
import { hedges, positions } from './queries.ts';

const example = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'example');

export async function demo(argv: string[]): Promise<void> {
  parse(argv, {});
  const dir = mkdtempSync(join(tmpdir(), 'hedge-ledger-demo-'));
  const common = ['--config', join(example, 'ledger.json'), '--store', `sqlite:${join(dir, 'ledger.db')}`];
  const step = (title: string) => process.stdout.write(`\n== ${title}\n`);
  try {
    step('ingest the example eth_getLogs file (one malformed line and one duplicate included)');
    await ingestFile([join(example, 'logs.jsonl'), '--tokens', join(example, 'tokens.json'), ...common]);
    step('positions before hedging');
    await positions(common);
    step('run --once with the paper broker');
    await run(['--once', ...common]);
    step('positions after hedging');
    await positions(common);
    step('hedges');
    await hedges(common);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

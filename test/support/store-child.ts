/**
 * A second OS process for the store contract suite:
 *   node --import tsx test/support/store-child.ts <command> <store url> <args…>
 * Prints `ready` once the store is open, then one JSON line with its result, and exits 0;
 * on failure, exits 1 with the error on stderr.
 */
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { isStoreError } from '../../src/eventstore/errors.ts';
import { NO_STREAM, type EventStore, type From } from '../../src/eventstore/port.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { runChildMain } from './child-main.ts';

export interface RaceRound {
  readonly id: string;
  /** 'won', or the kind of error the append got. */
  readonly outcome: string;
}

export interface ConsumeResult {
  readonly ids: string[];
  /** Events counted across all runs, carried in the checkpoint's snapshot. */
  readonly count: number;
}

async function waitForGo(): Promise<void> {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) if (line === 'go') break;
  lines.close();
  process.stdin.destroy(); // so the process can exit on its own, flushing stdout
}

/** After `go` on stdin: round r appends one event at expected revision r-1, win or lose. */
async function race(store: EventStore, [stream, rounds]: string[]): Promise<RaceRound[]> {
  await waitForGo();
  const results: RaceRound[] = [];
  for (let r = 0; r < Number(rounds); r++) {
    const id = randomUUID();
    const outcome = await store.append(stream!, [{ id, type: 'Raced', data: { round: r } }], r === 0 ? NO_STREAM : BigInt(r - 1)).then(
      () => 'won',
      (error: unknown) => (isStoreError(error) ? error.kind : String(error)),
    );
    results.push({ id, outcome });
  }
  return results;
}

/** Resumes checkpoint `name` (or starts after `from`), checkpoints after every event, stops after `stopId`. */
async function consume(store: EventStore, [name, prefix, from, stopId]: string[]): Promise<ConsumeResult> {
  const checkpoint = await store.readCheckpoint(name!);
  let count = checkpoint?.snapshot === undefined ? 0 : (JSON.parse(checkpoint.snapshot) as { count: number }).count;
  const ids: string[] = [];
  const subscription = store.subscribe({ from: checkpoint?.position ?? (from as From), prefixes: [prefix!] });
  for await (const event of subscription) {
    ids.push(event.id);
    count++;
    await store.saveCheckpoint(name!, { position: event.position, snapshot: JSON.stringify({ count }) });
    if (event.id === stopId) break;
  }
  return { ids, count };
}

async function append(store: EventStore, [stream, id]: string[]): Promise<string> {
  await store.append(stream!, [{ id: id!, type: 'FromAnotherProcess', data: {} }], NO_STREAM);
  return id!;
}

const commands = { race, consume, append };

async function main([command, url, ...args]: string[]): Promise<void> {
  const run = commands[command as keyof typeof commands];
  if (!run || !url) throw new Error(`usage: store-child.ts ${Object.keys(commands).join('|')} <store url> …`);
  const store = await openStore(url);
  console.log('ready');
  const result = await run(store, args);
  await store.close();
  console.log(JSON.stringify(result));
}

runChildMain('store-child', 20_000, main);

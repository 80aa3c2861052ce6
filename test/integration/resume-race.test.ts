/**
 * Two operators resume one halt at once: the one whose fold is stale by the time it appends is
 * refused (exact revision), so it can never clear a halt it has not seen.
 */
import { afterAll, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { accumulatorConfig } from '../../src/cli/context.ts';
import { fileTokenResolver, readLogFile } from '../../src/cli/commands/ingest-file.ts';
import { resume } from '../../src/cli/commands/resume.ts';
import { tokensOfLog } from '../../src/chain/log-tokens.ts';
import { streams } from '../../src/domain/events.ts';
import { withStore } from '../../src/eventstore/url.ts';
import { Ingester } from '../../src/services/ingester.ts';
import { runOnce } from '../../src/services/run-once.ts';
import { foldLedger } from '../../src/services/ledger-query.ts';
import { positionsJson } from '../../projections/queries.ts';
import { OrderRejected, type Broker } from '../../src/broker/port.ts';
import { rootLogger } from '../../src/log.ts';
import { EXAMPLE } from '../support/cli.ts';

// Holds one `resume` between its fold (where it sees the halt) and its append.
const hooks = vi.hoisted(() => ({ afterFold: [] as (() => Promise<void>)[] }));
vi.mock('../../src/services/ledger-query.ts', async (original) => {
  const real = await original<typeof import('../../src/services/ledger-query.ts')>();
  return {
    ...real,
    foldLedger: async (...args: Parameters<typeof real.foldLedger>) => {
      const view = await real.foldLedger(...args);
      await hooks.afterFold.shift()?.();
      return view;
    },
  };
});

rootLogger('silent');
const settings = loadConfig({ file: join(EXAMPLE, 'ledger.json'), env: {} });
const fold = accumulatorConfig(settings, 'test');
const refusing: Broker = {
  name: 'refusing',
  place: () => Promise.reject(new OrderRejected('symbol not tradable')),
  status: () => Promise.reject(new Error('never placed')),
  findPlaced: () => Promise.resolve(undefined),
  cancel: () => Promise.resolve(),
};
const dir = mkdtempSync(join(tmpdir(), 'resume-race-'));
const url = `sqlite:${join(dir, 'ledger.db')}`;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every order is rejected until GME halts (3 consecutive failures). */
const haltGme = () => withStore(url, (store) => runOnce(store, fold, refusing, { pollIntervalMs: 10, backoffMs: { min: 1, max: 10 } }));

it('a resume decided on a stale fold is refused instead of clearing a newer halt', async () => {
  vi.spyOn(process.stdout, 'write').mockReturnValue(true);
  await withStore(url, async (store) => {
    const { logs } = await readLogFile(join(EXAMPLE, 'logs.jsonl'), settings.chainId, settings.orderbook!, () => undefined);
    await new Ingester({ store, chainId: settings.chainId, orderbook: settings.orderbook!, tokens: fileTokenResolver(join(EXAMPLE, 'tokens.json')), tokensOf: tokensOfLog }).ingest(logs);
  });
  await haltGme();
  const args = (reason: string) => ['GME', '--reason', reason, '--config', join(EXAMPLE, 'ledger.json'), '--store', url];
  let [release, reached] = [() => {}, () => {}];
  const held = new Promise<void>((resolve) => (release = resolve));
  const atHold = new Promise<void>((resolve) => (reached = resolve));
  hooks.afterFold.push(() => (reached(), held));
  const a = resume(args('operator A')).then(() => 'resumed', (e: Error) => e.message);
  await atHold; // A saw GME halted
  await resume(args('operator B'));
  await haltGme(); // and GME halts again before A appends
  release();
  expect(await a).toMatch(/someone else wrote to hedgectl-GME at the same time/);
  await withStore(url, async (store) => {
    const control: string[] = [];
    for await (const e of store.readStream(streams.hedgeControl('GME'))) control.push(e.type);
    expect(control).toEqual(['HedgingResumed']);
    expect(positionsJson(await foldLedger(store, fold)).find((p) => p.symbol === 'GME')?.halted).toBe(true);
  });
});

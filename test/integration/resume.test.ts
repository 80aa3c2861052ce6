/**
 * `hedge-ledger resume <SYMBOL> --reason …` through the real binary: on the example ledger,
 * a broker that refuses every order halts both symbols; resuming one appends HedgingResumed to
 * its control stream at the exact revision, and the next run hedges it while the other stays halted.
 * Two operators resuming one halt at once: the one whose fold is stale by the time it appends
 * is refused, so it never clears a halt it has not seen.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { accumulatorConfig } from '../../src/cli/context.ts';
import { controlEventId } from '../../src/domain/ids.ts';
import { fileTokenResolver } from '../../src/cli/tokens-file.ts';
import { tokensOfLog } from '../../src/chain/log-tokens.ts';
import { decodeEvent, streams } from '../../src/domain/events.ts';
import { withStore } from '../../src/eventstore/url.ts';
import type { EventStore } from '../../src/eventstore/port.ts';
import { Ingester } from '../../src/services/ingester.ts';
import { runOnce } from '../../src/services/run-once.ts';
import { foldLedger } from '../../src/services/ledger-query.ts';
import { positionsJson, hedgesJson } from '../../projections/queries.ts';
import { PaperBroker } from '../../src/broker/paper.ts';
import { OrderRejected, type Broker } from '../../src/broker/port.ts';
import { rootLogger } from '../../src/log.ts';
import { resume } from '../../src/cli/commands/resume.ts';
import { EXAMPLE, readLogFile, runCli, type CliResult } from '../support/cli.ts';

// Lets a test hold an in-process `resume` between its fold (where it sees the halt) and its append.
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

rootLogger(process.env['LEDGER_TEST_LOGS'] ?? 'silent'); // the in-process runs log like production; quiet unless asked

const settings = loadConfig({ file: join(EXAMPLE, 'ledger.json'), env: {} });
const fold = accumulatorConfig(settings, 'resume test');

/** Refuses every order, as Schwab does for a symbol the account may not trade. */
const refusing: Broker = {
  name: 'refusing',
  place: () => Promise.reject(new OrderRejected('symbol not tradable in this account')),
  status: () => Promise.reject(new Error('no order was ever placed')),
  findPlaced: () => Promise.resolve(undefined),
  unlinkedOrders: () => Promise.resolve([]),
  cancel: () => Promise.resolve(),
};

const cli = (args: string[], store: string): Promise<CliResult> => runCli([...args, '--config', join(EXAMPLE, 'ledger.json'), '--store', store]);

const positions = (store: EventStore) => foldLedger(store, fold).then(positionsJson);

const HALT_REASON = '3 consecutive broker failures; resume with HedgingResumed';

/** Runs the refusing broker until every symbol with a command is halted (3 consecutive failures). */
const haltAll = (url: string) => withStore(url, (store) => runOnce(store, fold, refusing, { pollIntervalMs: 10, backoffMs: { min: 1, max: 10 } }));

/** A new ledger of the example's logs, in `dir`, with both symbols halted. */
async function haltedLedger(dir: string): Promise<string> {
  const url = `sqlite:${join(dir, 'ledger.db')}`;
  await withStore(url, async (store) => {
    const { logs } = await readLogFile(join(EXAMPLE, 'logs.jsonl'), settings.chainId, settings.orderbook!, () => undefined);
    await new Ingester({ store, chainId: settings.chainId, orderbook: settings.orderbook!, tokens: fileTokenResolver(join(EXAMPLE, 'tokens.json')), tokensOf: tokensOfLog }).ingest(logs);
  });
  await haltAll(url);
  return url;
}

describe('hedge-ledger resume', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-resume-'));
  let url = '';

  beforeAll(async () => {
    url = await haltedLedger(dir);
    await withStore(url, async (store) => {
      expect((await positions(store)).map((p) => [p.symbol, p.halted, p.consecutiveFailures, p.haltReason])).toEqual([
        ['AAPL', true, 3, HALT_REASON],
        ['GME', true, 3, HALT_REASON],
      ]);
    });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('appends HedgingResumed at the exact revision, and the next run hedges that symbol only', async () => {
    const resumed = await cli(['resume', 'GME', '--reason', 'GME is tradable again', '--json'], url);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ symbol: 'GME', stream: 'hedgectl-GME', revision: 0, reason: 'GME is tradable again', wasHalted: true, net: '-1.2' });

    await withStore(url, async (store) => {
      const events = [];
      for await (const e of store.readStream(streams.hedgeControl('GME'))) events.push(e);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ id: controlEventId('GME', 0n), type: 'HedgingResumed', revision: 0n });
      const decoded = decodeEvent(events[0]!);
      expect(decoded._tag === 'Right' && decoded.right.data).toMatchObject({ symbol: 'GME', reason: 'GME is tradable again' });

      expect((await positions(store)).map((p) => [p.symbol, p.halted, p.consecutiveFailures, p.haltReason])).toEqual([['AAPL', true, 3, HALT_REASON], ['GME', false, 0, null]]);
      await runOnce(store, fold, new PaperBroker(), { pollIntervalMs: 10 });
      expect((await positions(store)).map((p) => [p.symbol, p.net, p.halted, p.pending])).toEqual([['AAPL', '2.5', true, null], ['GME', '-0.2', false, null]]);
      const hedges = hedgesJson(await foldLedger(store, fold));
      expect(hedges.filter((h) => h.status === 'filled').map((h) => `${h.side} ${h.quantity} ${h.symbol}`)).toEqual(['BUY 1 GME']);
    });
  });

  it('refuses a symbol that is not halted (unless --force), an unknown one, and a missing reason', async () => {
    const notHalted = await cli(['resume', 'GME', '--reason', 'again'], url);
    expect(notHalted.code).toBe(2);
    expect(notHalted.stderr).toMatch(/GME is not halted/);

    const forced = await cli(['resume', 'GME', '--reason', 'reset the count', '--force', '--json'], url);
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ revision: 1, wasHalted: false });

    expect(await cli(['resume', 'TSLA', '--reason', 'x'], url)).toMatchObject({ code: 2, stderr: expect.stringMatching(/never seen TSLA/) });
    expect(await cli(['resume', 'gme', '--reason', 'x'], url)).toMatchObject({ code: 2, stderr: expect.stringMatching(/base ticker/) });
    expect(await cli(['resume', 'AAPL'], url)).toMatchObject({ code: 2, stderr: expect.stringMatching(/--reason <text> is required/) });
    await withStore(url, async (store) => expect((await store.readLastEvent(streams.hedgeControl('AAPL')))).toBeUndefined());
  });
});

describe('hedge-ledger resume: two operators at once', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-resume-race-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a resume decided on a stale fold is refused instead of clearing a newer halt', async () => {
    const url = await haltedLedger(dir);
    vi.spyOn(process.stdout, 'write').mockReturnValue(true);
    const args = (reason: string) => ['GME', '--reason', reason, '--config', join(EXAMPLE, 'ledger.json'), '--store', url];
    let [release, reached] = [() => {}, () => {}];
    const held = new Promise<void>((resolve) => (release = resolve));
    const atHold = new Promise<void>((resolve) => (reached = resolve));
    hooks.afterFold.push(() => (reached(), held));
    const a = resume(args('operator A')).then(() => 'resumed', (e: Error) => e.message);
    await atHold; // A saw GME halted
    await resume(args('operator B'));
    await haltAll(url); // and GME halts again before A appends
    release();
    expect(await a).toMatch(/someone else wrote to hedgectl-GME at the same time/);
    await withStore(url, async (store) => {
      const control: string[] = [];
      for await (const e of store.readStream(streams.hedgeControl('GME'))) control.push(e.type);
      expect(control).toEqual(['HedgingResumed']);
      expect((await positions(store)).find((p) => p.symbol === 'GME')?.halted).toBe(true);
    });
  });
});

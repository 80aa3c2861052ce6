/**
 * `replay` checks the decisions it derives against the recorded ones. Without that, its only word was the warning
 * when the accumulator's checkpoint was folded under other settings, which cannot see a replay that does not
 * reproduce the ledger under the same ones (a stored fill damaged since it was decided): it printed a hash of
 * hedges never issued without a word.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openStore } from '../../src/eventstore/url.ts';
import { Ingester } from '../../src/services/ingester.ts';
import { tokensOfLog } from '../../src/chain/log-tokens.ts';
import { AccumulatorService } from '../../src/services/accumulator.ts';
import { History, CHAIN_ID, ORDERBOOK, OUR_OWNER, TOKEN, ourTake } from '../support/orderbook-logs.ts';
import { config } from '../support/scenario.ts';
import { testLog } from '../support/test-log.ts';
import { runCli } from '../support/cli.ts';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A SQLite ledger whose accumulator decided GME (oS 1.2 → BUY 1), then AAPL (oB 2.5 → SELL 2); its file. */
async function decidedLedger(): Promise<string> {
  dir = mkdtempSync(join(tmpdir(), 'ledger-replay-'));
  const path = join(dir, 'ledger.db');
  const store = await openStore(`sqlite:${path}`);
  const symbols = new Map<string, string>(Object.entries(TOKEN).map(([name, address]) => [address, name]));
  const ingester = new Ingester({
    store, chainId: CHAIN_ID, orderbook: ORDERBOOK, tokensOf: tokensOfLog,
    tokens: { resolve: async (tokens) => new Map([...tokens.keys()].map((a) => [a, { symbol: symbols.get(a) ?? null, reason: null }])) },
  });
  const history = new History();
  await ingester.ingest([ourTake(history, 'SELL', 12n, 'tGME', 100n), ourTake(history, 'BUY', 25n, 'tAAPL', 101n)]);
  await new AccumulatorService({ store, config, log: testLog('accumulator') }).catchUp();
  await store.close();
  return path;
}

/** The JSON log lines on stderr that say which recorded decisions differ. */
const differing = (r: { stderr: string }) =>
  r.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; differing?: string[] }).filter((w) => w.differing !== undefined);

const replay = (path: string, env: Record<string, string> = {}) =>
  runCli(['replay', '--json', '--store', `sqlite:${path}`], { env: { LEDGER_CHAIN_ID: String(CHAIN_ID), LEDGER_ORDERBOOK: ORDERBOOK, LEDGER_OWNERS: OUR_OWNER, ...env } });

describe('replay', () => {
  it('reports every recorded decision as derived again under the settings that wrote them', { timeout: 60_000 }, async () => {
    const r = await replay(await decidedLedger());
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ recordedDecisions: 2, differingDecisions: 0 });
    expect(differing(r)).toEqual([]);
  });

  it('names each recorded decision it derives otherwise under other settings', { timeout: 60_000 }, async () => {
    const r = await replay(await decidedLedger(), { LEDGER_BROKER_SYMBOLS: 'AAPL=XAAPL' });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ recordedDecisions: 2, differingDecisions: 1 });
    expect(differing(r)).toEqual([expect.objectContaining({
      msg: expect.stringMatching(/^1 of 2 recorded decisions differ from the ones this replay derives: this state is not what was hedged/),
      differing: [expect.stringMatching(/^decision 1 for AAPL \(recorded HedgeRequested .*"brokerSymbol":"AAPL".*; derived HedgeRequested .*"brokerSymbol":"XAAPL"/)],
    })]);
  });

  it('warns when a damaged fill keeps it from deriving a recorded decision, though the checkpoint was folded under the same settings', { timeout: 60_000 }, async () => {
    const path = await decidedLedger();
    const db = new Database(path);
    db.prepare(`UPDATE events SET data = '{}' WHERE position = (SELECT MIN(position) FROM events WHERE stream LIKE 'orderbook-%')`).run();
    db.close();
    const r = await replay(path);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ recordedDecisions: 2, differingDecisions: 1 });
    expect(differing(r)).toEqual([expect.objectContaining({ differing: [expect.stringMatching(/^decision 1 for GME \(recorded HedgeRequested .*"side":"BUY".*; derived none\)$/)] })]);
  });
});

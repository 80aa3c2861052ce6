/**
 * `replay` checks the decisions it derives against the recorded ones. Without that, its only word on settings was
 * the warning when the accumulator's checkpoint was folded under others; an accumulator started under new settings
 * checkpoints under them as soon as a decision agrees (or every 1000 events), before the one that differs stops it,
 * and from then on a replay under those settings would be silent about hedges the ledger never issued.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/eventstore/url.ts';
import { Ingester } from '../../src/services/ingester.ts';
import { tokensOfLog } from '../../src/chain/log-tokens.ts';
import { AccumulatorService, DecisionDiverged } from '../../src/services/accumulator.ts';
import { History, CHAIN_ID, ORDERBOOK, OUR_OWNER, TOKEN, ourTake } from '../support/orderbook-logs.ts';
import { config } from '../support/scenario.ts';
import { testLog } from '../support/test-log.ts';
import { runCli } from '../support/cli.ts';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A ledger whose accumulator decided GME then AAPL, then was started under another AAPL broker symbol: stopped at AAPL's decision. */
async function ledgerDivergedAtAapl(): Promise<string> {
  dir = mkdtempSync(join(tmpdir(), 'ledger-replay-'));
  const url = `sqlite:${join(dir, 'ledger.db')}`;
  const store = await openStore(url);
  const symbols = new Map<string, string>(Object.entries(TOKEN).map(([name, address]) => [address, name]));
  const ingester = new Ingester({
    store, chainId: CHAIN_ID, orderbook: ORDERBOOK, tokensOf: tokensOfLog,
    tokens: { resolve: async (tokens) => new Map([...tokens.keys()].map((a) => [a, { symbol: symbols.get(a) ?? null, reason: null }])) },
  });
  const history = new History();
  await ingester.ingest([ourTake(history, 'SELL', 12n, 'tGME', 100n), ourTake(history, 'BUY', 25n, 'tAAPL', 101n)]);
  await new AccumulatorService({ store, config, log: testLog('accumulator') }).catchUp();
  const renamed = new AccumulatorService({ store, config: { ...config, brokerSymbols: { AAPL: 'XAAPL' } }, log: testLog('accumulator') });
  await renamed.restore();
  await expect(renamed.catchUp()).rejects.toThrow(DecisionDiverged);
  await store.close();
  return url;
}

/** The JSON log lines on stderr about the ledger (not the config's). */
const warnings = (r: { stderr: string }) => r.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { component: string; msg: string; differing?: string[] }).filter((w) => w.component !== 'config');

const env = (more: Record<string, string> = {}) => ({ LEDGER_CHAIN_ID: String(CHAIN_ID), LEDGER_ORDERBOOK: ORDERBOOK, LEDGER_OWNERS: OUR_OWNER, ...more });

describe('replay', () => {
  it('warns that the recorded decisions differ from the ones it derives, naming them, even when the checkpoint was folded under the same settings', { timeout: 60_000 }, async () => {
    const store = await ledgerDivergedAtAapl();
    const other = await runCli(['replay', '--json', '--store', store], { env: env({ LEDGER_BROKER_SYMBOLS: 'AAPL=XAAPL' }) });
    expect(other.code, other.stderr).toBe(0);
    expect(JSON.parse(other.stdout)).toMatchObject({ recordedDecisions: 2, differingDecisions: 1 });
    expect(warnings(other)).toEqual([expect.objectContaining({
      msg: expect.stringMatching(/^1 of 2 recorded decisions differ from the ones this replay derives: this state is not what was hedged/),
      differing: [expect.stringMatching(/^decision 1 for AAPL \(recorded HedgeRequested .*"brokerSymbol":"AAPL".*; derived HedgeRequested .*"brokerSymbol":"XAAPL"/)],
    })]);

    const same = await runCli(['replay', '--json', '--store', store], { env: env() });
    expect(same.code, same.stderr).toBe(0);
    expect(JSON.parse(same.stdout)).toMatchObject({ recordedDecisions: 2, differingDecisions: 0 });
    // Only the checkpoint's warning (it was folded under the other broker symbol): every decision is derived again.
    expect(warnings(same).filter((w) => w.differing !== undefined)).toEqual([]);
  });
});

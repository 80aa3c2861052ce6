/** `trades` on a long ledger, through the real binary: its memory stays flat, and a fill a reorg undid stays out. */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLE, ROOT } from '../support/cli.ts';
import { History, io, takeOrderV2Log, OUR_OWNER } from '../support/orderbook-logs.ts';
import { encodeEvent, type LedgerEvent } from '../../src/domain/events.ts';
import { openStore } from '../../src/eventstore/url.ts';
import type { Envelope } from '../../src/domain/events.ts';

const TAKES = 30_000;

/** `trades --json` in a heap of `heapMb`: its exit code, stdout and the tail of stderr. */
function tradesJson(store: string, heapMb: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`--max-old-space-size=${heapMb}`, join(ROOT, 'bin', 'hedge-ledger.js'), 'trades', '--json', '--config', join(EXAMPLE, 'ledger.json'), '--store', store], {
      cwd: ROOT, env: { ...process.env, LEDGER_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-2000)));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('trades on a long ledger', () => {
  it(`lists ${TAKES} fills within a 32 MB heap, in chain order, without the one a reorg removed`, async () => {
    const store = `sqlite:${join(mkdtempSync(join(tmpdir(), 'ledger-trades-')), 'ledger.db')}`;
    const history = new History();
    const stored = (e: Envelope) => encodeEvent(e.id, e as unknown as LedgerEvent);
    const sell = takeOrderV2Log({ owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] }, { input: 10n ** 17n, output: 2_000_000n });
    const logs = Array.from({ length: TAKES }, (_, i) => history.log(sell, { tx: `take ${i}`, logIndex: 0, block: 1_000n + BigInt(i) }));
    const removed = logs[TAKES - 2]!;
    const s = await openStore(store);
    try {
      await s.append('token-8453', history.allTokens().map(stored), 'no_stream');
      const orderbook = removed.stream;
      const events = [...logs.map(stored), stored(history.logRemoved(removed))];
      for (let i = 0; i < events.length; i += 2_000) await s.append(orderbook, events.slice(i, i + 2_000), i === 0 ? 'no_stream' : BigInt(i - 1));
    } finally {
      await s.close();
    }

    const r = await tradesJson(store, 32);
    expect(r.code, r.stderr).toBe(0);
    const trades = JSON.parse(r.stdout) as { logId: string; side: string; shares: string }[];
    expect(trades).toHaveLength(TAKES - 1);
    expect(trades.map((t) => t.logId)).toEqual(logs.filter((l) => l !== removed).map((l) => l.id));
    expect(trades[0]).toMatchObject({ side: 'SELL', shares: '0.1' });
  }, 30_000);
});

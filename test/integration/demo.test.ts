/**
 * The README's first command: `npm start` runs `hedge-ledger demo`. Run it (short) through the
 * real binary and check what it promises: trades hedged, a final report, exit 0.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { foldLedger } from '../../src/services/ledger-query.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { positionsJson } from '../../projections/queries.ts';
import * as D from '../../src/domain/decimal.ts';
import { ROOT, runCli } from '../support/cli.ts';

describe('hedge-ledger demo (npm start)', () => {
  it('hedges random trades on a local chain, reports, exits 0, and leaves its ledger where asked', async () => {
    const store = `sqlite:${join(mkdtempSync(join(tmpdir(), 'ledger-demo-')), 'ledger.db')}`;
    const { code, stdout } = await runCli(['demo', '--duration', '3', '--store', store], { timeoutMs: 90_000 });
    expect(code).toBe(0);
    expect(stdout).toMatch(/every symbol ends with \|net\| < 1 share: fully hedged\./);
    const [, total, filled] = /hedges: (\d+) \((\d+) filled\)/.exec(stdout) ?? [];
    expect(Number(total)).toBeGreaterThan(0);
    expect(filled).toBe(total);

    // The kept ledger folds to what the report said: every symbol within a share, nothing pending.
    const [, orderbook, owner] = /LEDGER_ORDERBOOK=(0x[0-9a-f]{40}) LEDGER_OWNERS=(0x[0-9a-f]{40})/.exec(stdout) ?? [];
    // The command it prints works as printed, pasted in the checkout (where hedge-ledger is not on PATH, but npx finds it).
    const hint = /query it with\n {2}(.*)\n/.exec(stdout)?.[1] ?? '';
    expect(hint).toMatch(/ npx hedge-ledger positions --store /);
    const pasted = await promisify(execFile)('sh', ['-c', hint], { cwd: ROOT, env: { ...process.env, LEDGER_LOG_LEVEL: 'warn' } });
    expect(pasted.stdout).toMatch(/^symbol +net +pending/);
    const ledger = await openStore(store);
    const view = await foldLedger(ledger, { fills: { chainId: 31337, orderbook: orderbook!, owners: new Set([owner!]) }, maxConsecutiveFailures: 3, brokerSymbols: {} });
    await ledger.close();
    const positions = positionsJson(view);
    expect(positions.length).toBeGreaterThan(0);
    for (const p of positions) {
      expect(D.lt(D.abs(D.parse(p.net)), D.ONE)).toBe(true);
      expect(p.pending).toBeNull();
    }
  }, 120_000);
});

describe('hedge-ledger demo beside a ledger of its own directory', () => {
  it('neither reads nor writes the executor mark of ./data/ledger.db (the default store), which is not the demo’s', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'ledger-demo-cwd-'));
    mkdirSync(join(cwd, 'data'));
    // What an executor of the default store (./data/ledger.db) left there: a command the demo's new ledger never holds.
    const mark = join(cwd, 'data', 'ledger.db.executor.mark');
    const production = JSON.stringify({ commandId: '00000000-0000-5000-8000-000000000000', revision: '2', at: '2026-11-28T21:00:00.000Z' });
    writeFileSync(mark, production);
    try {
      const { code, stdout, stderr } = await runCli(['demo', '--duration', '3'], { cwd, timeoutMs: 90_000 });
      expect(stderr).not.toMatch(/this store lacks order event/);
      expect(code).toBe(0);
      expect(stdout).toMatch(/every symbol ends with \|net\| < 1 share: fully hedged\./);
      expect(readFileSync(mark, 'utf8')).toBe(production);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('hedge-ledger demo stopped early', () => {
  /** Starts a 60 s demo with its own TMPDIR; `stop` runs once its first line is out. */
  function demoStoppedBy(stop: (child: ChildProcess) => void, onFirstLine?: (line: string) => void): Promise<{ code: number | null; stderr: string; leftovers: string[]; seconds: number }> {
    const tmp = mkdtempSync(join(tmpdir(), 'ledger-demo-stop-'));
    const started = performance.now();
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'hedge-ledger.js'), 'demo', '--duration', '60'], { env: { ...process.env, TMPDIR: tmp, LEDGER_LOG_LEVEL: 'warn' } });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.once('data', (chunk: Buffer) => {
      onFirstLine?.(chunk.toString());
      stop(child);
    });
    return new Promise((resolve) =>
      child.once('exit', (code) => {
        const leftovers = readdirSync(tmp).filter((name) => name.startsWith('hedge-ledger-')); // tsx keeps its cache there too
        rmSync(tmp, { recursive: true, force: true });
        resolve({ code, stderr, leftovers, seconds: (performance.now() - started) / 1000 });
      }),
    );
  }

  it('a reader that goes away (npm start | head) ends the demo early and cleanly: exit 0, no EPIPE trace, its temporary ledger removed', async () => {
    const ended = await demoStoppedBy((child) => child.stdout!.destroy());
    expect(ended.stderr).not.toMatch(/EPIPE|Unhandled/);
    expect(ended).toMatchObject({ code: 0, leftovers: [] });
    expect(ended.seconds).toBeLessThan(50);
  }, 90_000);

  it('Ctrl-C (SIGINT) stops the demo the same way, removing its temporary ledger', async () => {
    const ended = await demoStoppedBy((child) => child.kill('SIGINT'));
    expect(ended).toMatchObject({ code: 0, leftovers: [] });
    expect(ended.seconds).toBeLessThan(50);
  }, 90_000);

  it('a second Ctrl-C ends it at once (exit 130), and still leaves no temporary ledger and no chain behind', async () => {
    let rpcUrl: string | undefined;
    const ended = await demoStoppedBy((child) => {
      child.kill('SIGINT');
      setTimeout(() => child.kill('SIGINT'), 50);
    }, (line) => (rpcUrl ??= /anvil on (\S+),/.exec(line)?.[1]));
    expect(ended).toMatchObject({ code: 130, leftovers: [] });
    expect(rpcUrl).toBeDefined();
    await expect(fetch(rpcUrl!, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' })).rejects.toThrow();
  }, 90_000);
});

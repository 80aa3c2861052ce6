/** The CLI contract, through the real binary: the example session of docs/cli.md. */
import { describe, expect, it, beforeAll } from 'vitest';
import { EXAMPLE, ROOT, runCli, type CliResult } from '../support/cli.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { io, takeOrderV2Log, txHash, OUR_OWNER, ORDERBOOK, TOKEN, type RawLog } from '../support/orderbook-logs.ts';
import { freePort, ServiceProcess } from '../support/e2e-stack.ts';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer, type AddressInfo } from 'node:net';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';


const cli = (args: string[], env: Record<string, string> = {}): Promise<CliResult> => runCli(args, { env });

describe('hedge-ledger CLI on the example ledger', () => {
  const store = `sqlite:${join(mkdtempSync(join(tmpdir(), 'ledger-cli-')), 'ledger.db')}`;
  const common = ['--config', join(EXAMPLE, 'ledger.json'), '--store', store];
  let ingest: CliResult;

  beforeAll(async () => {
    ingest = await cli(['ingest-file', join(EXAMPLE, 'logs.jsonl'), '--tokens', join(EXAMPLE, 'tokens.json'), '--json', ...common]);
  });

  it('ingest-file appends the logs, reports the malformed line by number, and dedupes the repeat', async () => {
    expect(ingest.code).toBe(0);
    expect(JSON.parse(ingest.stdout)).toMatchObject({ lines: 10, appended: 8, alreadyIngested: 1, outOfOrder: 0, tokensRecorded: 5, tokensUnknown: 0, blank: 0, malformed: 1, otherContracts: 0, otherEvents: 0, removed: 0 });
    expect(ingest.stderr).toMatch(/"line":9,"problem":"address: expected 0x-prefixed hex, got nothing"/);
    const again = await cli(['ingest-file', join(EXAMPLE, 'logs.jsonl'), '--tokens', join(EXAMPLE, 'tokens.json'), '--json', ...common]);
    expect(JSON.parse(again.stdout)).toMatchObject({ appended: 0, alreadyIngested: 9, outOfOrder: 0, tokensRecorded: 0 });
  });

  it('positions, run --once, hedges and trades follow the JSON contract', async () => {
    const before = JSON.parse((await cli(['positions', '--json', ...common])).stdout);
    expect(before.map((p: Record<string, unknown>) => ({ symbol: p['symbol'], net: p['net'], pending: p['pending'], halted: p['halted'] }))).toEqual([
      { symbol: 'AAPL', net: '2.5', pending: { commandId: expect.any(String), side: 'SELL', quantity: '2' }, halted: false },
      { symbol: 'GME', net: '-1.2', pending: { commandId: expect.any(String), side: 'BUY', quantity: '1' }, halted: false },
    ]);

    expect((await cli(['run', '--once', '--broker', 'paper', ...common])).code).toBe(0);

    const after = JSON.parse((await cli(['positions', '--json', ...common])).stdout);
    expect(after.map((p: Record<string, unknown>) => [p['symbol'], p['net'], p['pending']])).toEqual([['AAPL', '0.5', null], ['GME', '-0.2', null]]);

    const hedges = JSON.parse((await cli(['hedges', '--json', ...common])).stdout);
    expect(hedges).toEqual([
      expect.objectContaining({ commandId: before[1].pending.commandId, symbol: 'GME', side: 'BUY', quantity: '1', status: 'filled', filledQuantity: '1', averagePrice: '22.7' }),
      expect.objectContaining({ commandId: before[0].pending.commandId, symbol: 'AAPL', side: 'SELL', quantity: '2', status: 'filled', filledQuantity: '2', averagePrice: '200.1' }),
    ]);

    const trades = JSON.parse((await cli(['trades', '--json', ...common])).stdout);
    expect(trades.map((t: Record<string, unknown>) => [t['symbol'], t['side'], t['shares'], t['price']])).toEqual([
      ['GME', 'SELL', '0.3', '22.5'], ['GME', 'SELL', '0.5', '22.6'], ['GME', 'SELL', '0.4', '22.7'], ['AAPL', 'BUY', '2.5', '200.1'],
    ]);
  });

  it('replay prints the same state hash every time, the one docs/cli.md shows', async () => {
    const a = JSON.parse((await cli(['replay', '--json', ...common])).stdout);
    const b = JSON.parse((await cli(['replay', '--json', ...common])).stdout);
    expect(a.events).toBeGreaterThan(8);
    expect(b.stateHash).toBe(a.stateHash);
    const documented = /^state hash ([0-9a-f]{64})$/m.exec(readFileSync(join(ROOT, 'docs', 'cli.md'), 'utf8'))?.[1];
    expect(a.stateHash).toBe(documented);
  });

  it.runIf(existsSync('/dev/full'))('output that cannot be written (a full disk) fails the command with one line, exit 1, no stack trace', async () => {
    const full = openSync('/dev/full', 'w');
    try {
      for (const command of [['positions'], ['trades', '--json']]) {
        const child = spawn(process.execPath, [join(ROOT, 'bin', 'hedge-ledger.js'), ...command, ...common], { cwd: ROOT, stdio: ['ignore', full, 'pipe'] });
        let stderr = '';
        child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
        const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
        expect({ command, code, stderr }).toEqual({ command, code: 1, stderr: `hedge-ledger ${command[0]}: could not write the output: ENOSPC: no space left on device, write\n` });
      }
    } finally {
      closeSync(full);
    }
  });

  it('names the key and reason of bad configuration, and exits 2', async () => {
    const bad = join(mkdtempSync(join(tmpdir(), 'ledger-cli-')), 'bad.json');
    writeFileSync(bad, JSON.stringify({ chainId: 'base', owners: ['bob'] }));
    const r = await cli(['positions', '--config', bad, '--store', store]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/config file key chainId: expected a positive integer, got "base"/);
    expect(r.stderr).toMatch(/config file key owners\.0: expected 0x-prefixed hex, got "bob"/);
  });

  it('checks the configuration before opening a store: exit 2, nothing on stdout, no store file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-cli-'));
    writeFileSync(join(dir, 'empty.json'), '{}');
    const unconfigured = ['--config', join(dir, 'empty.json'), '--store', `sqlite:${join(dir, 'sub', 'ledger.db')}`];
    for (const command of [['positions'], ['hedges'], ['trades'], ['rejected', '--json'], ['replay'], ['resume', 'GME', '--reason', 'x']]) {
      const r = await cli([...command, ...unconfigured]);
      expect({ command, code: r.code, stdout: r.stdout, stderr: r.stderr }).toMatchObject({ code: 2, stdout: '', stderr: expect.stringMatching(/needs orderbook/) });
    }
    expect(existsSync(join(dir, 'sub'))).toBe(false);
    await (await openStore(`sqlite:${join(dir, 'empty.db')}`)).close(); // a ledger with nothing in it yet
    const empty = await cli(['rejected', '--json', ...common.slice(0, 2), '--store', `sqlite:${join(dir, 'empty.db')}`]);
    expect(empty).toMatchObject({ code: 0, stdout: '[]\n' });
  });

  it('answers no query, replay or resume from a SQLite file that does not exist (a mistyped path), and creates none', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-cli-'));
    const missing = join(dir, 'dta', 'ledger.db');
    for (const command of [['positions'], ['hedges', '--json'], ['trades'], ['rejected', '--json'], ['replay'], ['resume', 'GME', '--reason', 'x']]) {
      const r = await cli([...command, ...common.slice(0, 2), '--store', `sqlite:${missing}`]);
      expect({ command, ...r }).toMatchObject({ code: 1, stdout: '', stderr: `hedge-ledger ${command[0]}: StoreConfigError: no ledger at ${missing}: nothing has been stored there (ingest, ingest-file or run first, or check --store / LEDGER_STORE)\n` });
    }
    expect(existsSync(join(dir, 'dta'))).toBe(false);
  });

  it('run --once refuses a SQLite file that does not exist rather than report an empty new ledger done: a mistyped path would pass every scheduled run, hedging nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-cli-'));
    const missing = join(dir, 'dta', 'ledger.db');
    const r = await cli(['run', '--once', ...common.slice(0, 2), '--store', `sqlite:${missing}`]);
    expect(r).toMatchObject({ code: 1, stdout: '', stderr: expect.stringContaining(`hedge-ledger run: StoreConfigError: no ledger at ${missing}`) });
    expect(existsSync(join(dir, 'dta'))).toBe(false);
  });

  it('refuses an argument a command does not take, naming it', async () => {
    const refused = (argument: string, takes: string) => ({ code: 2, stdout: '', stderr: expect.stringContaining(`unexpected argument "${argument}": this command takes ${takes}`) });
    expect(await cli(['positions', 'GME', ...common])).toMatchObject(refused('GME', 'options only'));
    expect(await cli(['replay', '--json', 'now', ...common])).toMatchObject(refused('now', 'options only'));
    const logs = join(EXAMPLE, 'logs.jsonl');
    expect(await cli(['ingest-file', logs, logs, '--tokens', join(EXAMPLE, 'tokens.json'), ...common])).toMatchObject(refused(logs, '<logs.jsonl> and options'));
    expect(await cli(['resume', 'GME', 'AAPL', '--reason', 'x', ...common])).toMatchObject(refused('AAPL', '<SYMBOL> and options'));
    // A URL where none is taken (`--store=` and a space, a forgotten --store) is named by its scheme only: it may hold a password or an API key.
    for (const [url, scheme] of [['esdb://admin:s3cret@db:2113', 'esdb'], ['https://base.example/v2/s3cret', 'https']]) {
      const r = await cli(['positions', url!, ...common]);
      expect(r).toMatchObject({ code: 2, stdout: '', stderr: expect.stringContaining(`unexpected argument (a URL: ${scheme}://…): this command takes options only`) });
      expect(r.stderr).not.toMatch(/s3cret/);
    }
  });

  it('refuses an option a command does not take, never ignoring it: --json where nothing prints JSON, --roles with --once', async () => {
    const refused = (option: string) => ({ code: 2, stdout: '', stderr: expect.stringContaining(option) });
    // Bounded: ignoring the option, the service, the simulator and the demo would run on.
    const bounded = (args: string[], env: Record<string, string> = {}) => runCli(args, { env, timeoutMs: 15_000 });
    expect(await bounded(['run', '--once', '--roles', 'api', ...common])).toMatchObject(refused('--roles'));
    expect(await bounded(['run', '--json', '--roles', 'api', ...common], { LEDGER_HTTP_PORT: '0' })).toMatchObject(refused('--json'));
    expect(await bounded(['schwab-sim', '--json'])).toMatchObject(refused('--json'));
    expect(await bounded(['demo', '--json'])).toMatchObject(refused('--json'));
    const schwab = { SCHWAB_APP_KEY: 'k', SCHWAB_APP_SECRET: 's', TOKEN_ENCRYPTION_KEY: '0'.repeat(64), SCHWAB_TOKEN_FILE: join(mkdtempSync(join(tmpdir(), 'ledger-cli-')), 'tokens.json') };
    expect(await bounded(['auth', 'login', '--json'], schwab)).toMatchObject(refused('--json'));
    expect(JSON.parse((await cli(['run', '--once', '--json', ...common])).stdout)).toMatchObject({ rounds: expect.any(Number) });
  });

  it('schwab-sim refuses an empty or blank --host (an unset shell variable): node would bind every interface, where the default is 127.0.0.1', async () => {
    for (const host of ['', ' 127.0.0.1']) {
      expect(await runCli(['schwab-sim', '--host', host, '--port', '0'], { timeoutMs: 15_000 })).toMatchObject({ code: 2, stdout: '', stderr: expect.stringMatching(/^hedge-ledger schwab-sim: --host must be a host name or IP address without surrounding whitespace/) });
    }
  });

  it('the usage text names every option docs/cli.md gives each command', async () => {
    const usage = (await cli(['--help'])).stdout;
    const rows = readFileSync(join(ROOT, 'docs', 'cli.md'), 'utf8').split('\n').filter((line) => line.startsWith('| `'));
    const missing = rows.flatMap((row) => {
      const command = /^\| `([a-z-]+)/.exec(row)![1]!;
      const help = usage.split('\n').find((line) => line.startsWith(`  ${command} `)) ?? '';
      return [...row.split(' | ')[0]!.matchAll(/--[a-z-]+/g)].map(([option]) => option).filter((option) => !help.includes(option)).map((option) => `${command} ${option}`);
    });
    expect(missing).toEqual([]);
  });

  it('run checks every role\'s settings before anything starts: without rpcUrl it exits 2, no store opened', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ledger-cli-')), 'ledger.db');
    const r = await cli(['run', '--config', join(EXAMPLE, 'ledger.json'), '--store', `sqlite:${file}`], { LEDGER_LOG_LEVEL: 'info' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^hedge-ledger run: bad configuration:\n {2}run needs rpcUrl \(env LEDGER_RPC_URL/);
    expect(r.stderr).not.toMatch(/HTTP API listening|service running/);
    expect(existsSync(file)).toBe(false);
  });

  it('run needs the broker\'s settings only with the execute role', async () => {
    const execute = await cli(['run', '--roles', 'execute', '--broker', 'schwab', ...common]);
    expect(execute.code).toBe(2);
    expect(execute.stderr).toMatch(/run --broker schwab needs schwabAppKey/);

    const port = await freePort();
    const child = spawn(process.execPath, ['bin/hedge-ledger.js', 'run', '--roles', 'api', '--broker', 'schwab', ...common], {
      cwd: ROOT, env: { ...process.env, LEDGER_HTTP_PORT: String(port), LEDGER_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const api = new ServiceProcess(child, port, join(mkdtempSync(join(tmpdir(), 'ledger-cli-')), 'run.log'));
    const running = await api.logged('service running');
    const exited = await api.stop();
    expect(running, api.logTail).toBe(true);
    expect(exited).toMatchObject({ code: 0 });
  });

  it('run on a busy HTTP port exits 1 with one clear line, nothing left running', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as AddressInfo;
    try {
      const r = await runCli(['run', '--roles', 'accumulate,execute,api', ...common], { env: { LEDGER_HTTP_PORT: String(port) }, timeoutMs: 20_000 });
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`hedge-ledger run: the HTTP API cannot listen on 127.0.0.1:${port}: the port is in use (EADDRINUSE): stop what holds it, or set another port (env LEDGER_HTTP_PORT or config file key "httpPort"; 0 picks a free one)\n`);
    } finally {
      busy.close();
    }
  });

  it('schwab-sim on a busy port exits 1 naming the port and --port', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as AddressInfo;
    try {
      const r = await runCli(['schwab-sim', '--port', String(port)], { timeoutMs: 20_000 });
      expect(r).toMatchObject({ code: 1, stdout: '' });
      expect(r.stderr).toBe(`hedge-ledger schwab-sim: cannot listen on 127.0.0.1:${port}: the port is in use (EADDRINUSE): stop what holds it, or give another --port (0, the default, picks a free one)\n`);
    } finally {
      busy.close();
    }
  });

  it('rejects a bad store URL as bad configuration, naming the setting and never its password, and an unknown command clearly', async () => {
    const r = await cli(['positions', ...common.slice(0, 2), '--store', 'postgres://nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--store: unknown kind of store, got "postgres:\/\/nope"/);
    const secret = await cli(['positions', ...common.slice(0, 2)], { LEDGER_STORE: 'kurrentdb://admin:s3cret@db.internal:2113?tls=false' });
    expect(secret.code).toBe(2);
    expect(secret.stderr).toMatch(/env LEDGER_STORE → store: unknown kind of store, got "kurrentdb:\/\/\*\*\*@db\.internal:2113\?tls=false"/);
    expect(secret.stderr).not.toMatch(/s3cret/);
    const u = await cli(['frobnicate']);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/unknown command "frobnicate"/);
  });

  it('demo keeps its ledger only in an empty store, and takes no configuration', async () => {
    const kept = await cli(['demo', '--store', store]);
    expect(kept.code).toBe(2);
    expect(kept.stderr).toContain(`demo --store needs an empty store, and ${store} already holds events`);
    const configured = await cli(['demo', '--config', join(EXAMPLE, 'ledger.json')]);
    expect(configured.code).toBe(2);
    expect(configured.stderr).toMatch(/demo needs no configuration/);
    const bad = await cli(['demo', '--store', 'mysql://root:s3cret@db']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--store: unknown kind of store, got "mysql:\/\/\*\*\*@db"/);
    expect(bad.stderr).not.toMatch(/s3cret/);
  });
});

describe('ingest-file', () => {
  const tokens = JSON.parse(readFileSync(join(EXAMPLE, 'tokens.json'), 'utf8')) as Record<string, string>;
  /** A fresh directory with a store in it to ingest into, and the arguments that name it. */
  const fresh = () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-cli-ingest-'));
    return { dir, args: ['--config', join(EXAMPLE, 'ledger.json'), '--store', `sqlite:${join(dir, 'ledger.db')}`] };
  };

  it('refuses a tokens file that gives an address twice, naming both spellings: exit 2, no store opened', async () => {
    const { dir, args } = fresh();
    const gme = '0xa000000000000000000000000000000000000004';
    const upper = gme.toUpperCase().replace('0X', '0x');
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify({ ...tokens, [upper]: 'tAAPL' }));
    const r = await cli(['ingest-file', join(EXAMPLE, 'logs.jsonl'), '--tokens', join(dir, 'tokens.json'), ...args]);
    expect(r).toMatchObject({ code: 2, stdout: '', stderr: expect.stringContaining(`an address given twice: "${gme}" and "${upper}"`) });
    expect(existsSync(join(dir, 'ledger.db'))).toBe(false);
  });

  it('warns once about each token the tokens file lacks, with its address, and counts them in both summaries', async () => {
    const { dir, args } = fresh();
    const usdc = '0x833589fcd6edb6e08f4c7c32d4f71b54bda02913';
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify({ [usdc]: tokens[usdc] }));
    const ingest = ['ingest-file', join(EXAMPLE, 'logs.jsonl'), '--tokens', join(dir, 'tokens.json')];
    const json = await cli([...ingest, '--json', ...args]);
    expect(JSON.parse(json.stdout)).toMatchObject({ tokensRecorded: 5, tokensUnknown: 4 });
    const warned = json.stderr.split('\n').filter((l) => l.includes('token not in the tokens file')).map((l) => JSON.parse(l).token);
    expect(warned.sort()).toEqual(Object.keys(tokens).filter((a) => a !== usdc).sort());
    const text = await cli([...ingest, ...fresh().args]);
    expect(text.stdout).toContain('5 tokens recorded (4 unknown)');
  });

  it('reads logs, tokens and configuration files that start with a UTF-8 byte order mark', async () => {
    const { dir } = fresh();
    for (const name of ['logs.jsonl', 'tokens.json', 'ledger.json']) writeFileSync(join(dir, name), `\uFEFF${readFileSync(join(EXAMPLE, name), 'utf8')}`);
    const r = await cli(['ingest-file', join(dir, 'logs.jsonl'), '--tokens', join(dir, 'tokens.json'), '--json', '--config', join(dir, 'ledger.json'), '--store', `sqlite:${join(dir, 'ledger.db')}`]);
    expect(JSON.parse(r.stdout)).toMatchObject({ lines: 10, appended: 8, alreadyIngested: 1, tokensRecorded: 5, tokensUnknown: 0, malformed: 1 });
  });

  it('counts blank lines, so that the summary accounts for every line, in JSON and in text', async () => {
    const { dir, args } = fresh();
    const [first, second] = readFileSync(join(EXAMPLE, 'logs.jsonl'), 'utf8').split('\n');
    writeFileSync(join(dir, 'logs.jsonl'), `${first}\n\n${second}\r\n \t\n`);
    const ingest = ['ingest-file', join(dir, 'logs.jsonl'), '--tokens', join(EXAMPLE, 'tokens.json')];
    const summary = JSON.parse((await cli([...ingest, '--json', ...args])).stdout);
    expect(summary).toMatchObject({ lines: 4, appended: 2, blank: 2 });
    const categories = ['appended', 'alreadyIngested', 'outOfOrder', 'blank', 'malformed', 'otherContracts', 'otherEvents', 'removed'];
    expect(categories.reduce((sum, key) => sum + summary[key], 0)).toBe(summary.lines);
    expect((await cli([...ingest, ...fresh().args])).stdout).toMatch(/: 4 lines, 2 logs appended, .* 2 blank, /);
  });
});

describe('queries under other settings than the accumulator folded the ledger with', () => {
  it('warn, naming the settings, and answer under the ones given', async () => {
    const store = `sqlite:${join(mkdtempSync(join(tmpdir(), 'ledger-cli-settings-')), 'ledger.db')}`;
    const common = ['--config', join(EXAMPLE, 'ledger.json'), '--store', store];
    expect((await cli(['ingest-file', join(EXAMPLE, 'logs.jsonl'), '--tokens', join(EXAMPLE, 'tokens.json'), ...common])).code).toBe(0);
    // Those about the ledger: each run here also warns that the environment replaces the file's value (component config).
    const warnings = (r: CliResult) => r.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; component: string; settings: string[]; msg: string }).filter((w) => w.component !== 'config');
    const beforeRun = await cli(['positions', ...common], { LEDGER_OWNERS: '0x2222222222222222222222222222222222222222' });
    expect(warnings(beforeRun)).toEqual([]); // nothing folded by the accumulator yet: nothing to compare with
    expect((await cli(['run', '--once', ...common])).code).toBe(0);

    expect(warnings(await cli(['positions', ...common]))).toEqual([]);
    // The example's foreign owner made ours too: the answer shows a hedge for AAPL that was never issued.
    const otherOwners = await cli(['hedges', '--json', ...common], { LEDGER_OWNERS: '0x1111111111111111111111111111111111111111,0x2222222222222222222222222222222222222222' });
    expect(otherOwners.code).toBe(0);
    expect(warnings(otherOwners)).toEqual([expect.objectContaining({ level: 40, settings: ['owners'], msg: expect.stringContaining('the accumulator folded this ledger under other owners than given here') })]);
    const others = { LEDGER_BROKER_SYMBOLS: 'GME=GMEX', LEDGER_MAX_CONSECUTIVE_FAILURES: '5' };
    for (const command of ['trades', 'rejected']) {
      expect(warnings(await cli([command, ...common], others))).toEqual([expect.objectContaining({ settings: ['maxConsecutiveFailures', 'brokerSymbols'] })]);
    }
    // replay also checks the recorded decisions against its own: GME's broker symbol differs.
    expect(warnings(await cli(['replay', ...common], others))).toEqual([
      expect.objectContaining({ settings: ['maxConsecutiveFailures', 'brokerSymbols'] }),
      expect.objectContaining({ msg: expect.stringMatching(/^1 of 2 recorded decisions differ from the ones this replay derives/), differing: [expect.stringMatching(/^decision 1 for GME \(recorded HedgeRequested .*"brokerSymbol":"GME".*; derived HedgeRequested .*"brokerSymbol":"GMEX"/)] }),
    ]);
  });
});

describe('ingest-file on a terminal', () => {
  it('erases its progress bar before a skipped line\'s warning, so the log line starts at column 0 rather than run on after the bar', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-cli-tty-'));
    const line = [process.execPath, join(ROOT, 'bin', 'hedge-ledger.js'), 'ingest-file', join(EXAMPLE, 'logs.jsonl'), '--tokens', join(EXAMPLE, 'tokens.json'),
      '--config', join(EXAMPLE, 'ledger.json'), '--store', `sqlite:${join(dir, 'ledger.db')}`].join(' ');
    // `script` runs it on a pseudo-terminal: stderr is that terminal, so the bar is drawn.
    const { stdout } = await promisify(execFile)('script', ['-qec', line, '/dev/null'], { cwd: ROOT, env: { ...process.env, LEDGER_LOG_LEVEL: 'warn' } });
    expect(stdout).toContain('\ringest-file: MB checked');
    const warning = stdout.indexOf('{"level":40');
    expect(warning).toBeGreaterThan(0);
    expect(stdout.slice(0, warning).endsWith('\r\x1b[K')).toBe(true);
  });
});

describe('replay state hash', () => {
  it('is the same whatever the locale', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-cli-hash-'));
    const line = (raw: RawLog, block: number, tx: string) => JSON.stringify({
      address: ORDERBOOK, topics: raw.topics, data: raw.data, blockNumber: `0x${block.toString(16)}`, blockHash: txHash(`block ${block}`),
      transactionHash: txHash(tx), transactionIndex: '0x0', logIndex: '0x0', removed: false,
    });
    // Two rejection reasons that Estonian collation orders unlike code units ("z" sorts before "u" there).
    const zero = takeOrderV2Log({ owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io('tGME')] }, { input: 0n, output: 0n });
    const unknownToken = takeOrderV2Log({ owner: OUR_OWNER, validInputs: [io('USDC')], validOutputs: [io('tAAPL')] }, { input: 10n ** 18n, output: 1_000_000n });
    writeFileSync(join(dir, 'logs.jsonl'), `${line(zero, 30_000_000, 'zero')}\n${line(unknownToken, 30_000_001, 'unknown')}\n`);
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify({ [TOKEN.USDC]: 'USDC', [TOKEN.tGME]: 'tGME' }));
    const args = ['--config', join(EXAMPLE, 'ledger.json'), '--store', `sqlite:${join(dir, 'ledger.db')}`];
    expect((await cli(['ingest-file', join(dir, 'logs.jsonl'), '--tokens', join(dir, 'tokens.json'), ...args])).code).toBe(0);
    const rejected = JSON.parse((await cli(['rejected', '--json', ...args])).stdout) as { reason: string }[];
    expect(rejected.map((r) => r.reason).sort()).toEqual(['unknown_token', 'zero_amount']);

    const hashIn = async (locale: string) => JSON.parse((await cli(['replay', '--json', ...args], { LANG: locale, LC_ALL: locale })).stdout).stateHash;
    expect(await hashIn('et_EE.UTF-8')).toBe(await hashIn('en_US.UTF-8'));
  });
});

/** Option values the CLI must refuse rather than silently replace (exit 2, before anything starts). */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLE, runCli } from '../support/cli.ts';
import { lcg } from '../../src/seeded-random.ts';
import { ORDERBOOK, OUR_OWNER as OWNER } from '../support/orderbook-logs.ts';

describe('demo --seed', () => {
  it('seed 0 is seed 1 to the generator, so --seed 0 would replay seed 1\'s session', () => {
    const [zero, one] = [lcg(0), lcg(1)];
    expect([zero(), zero(), zero()]).toEqual([one(), one(), one()]);
  });

  it.each(['abc', '1.5', '-3', '4294967296', '0'])('refuses --seed %s, which would silently replay another seed\'s session', async (seed) => {
    const r = await runCli(['demo', '--seed', seed, '--duration', '0.2'], { timeoutMs: 60_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--seed/);
    expect(r.stdout).toBe(''); // nothing started: no anvil, no ledger
  }, 70_000);
});

describe('demo and LEDGER_LOG_LEVEL', () => {
  it('refuses a bad log level as bad configuration naming the variable (exit 2), before anything starts', async () => {
    const r = await runCli(['demo', '--duration', '0.2'], { env: { LEDGER_LOG_LEVEL: 'verbose' }, timeoutMs: 60_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/env LEDGER_LOG_LEVEL → logLevel: .*"verbose"/);
    expect(r.stdout).toBe('');
  }, 70_000);
});

describe('ingest-file and its input files', () => {
  it('refuses a logs file that is missing or not a file as bad usage (exit 2), like a missing tokens file, opening no store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-cli-files-'));
    const args = ['--config', join(EXAMPLE, 'ledger.json'), '--store', `sqlite:${join(dir, 'sub', 'ledger.db')}`];
    for (const logs of [join(dir, 'missing.jsonl'), dir]) {
      const r = await runCli(['ingest-file', logs, '--tokens', join(EXAMPLE, 'tokens.json'), ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`logs file ${logs}`);
      expect(r.stdout).toBe('');
    }
    expect(existsSync(join(dir, 'sub'))).toBe(false);
  }, 30_000);
});

describe('ingest-file without one of its files', () => {
  it.each([
    [['--tokens', join(EXAMPLE, 'tokens.json')], 'the logs file is missing'],
    [[join(EXAMPLE, 'logs.jsonl')], '--tokens is missing (a JSON object of token address → ERC20 symbol)'],
  ])('%j says which one is missing (exit 2)', async (args, missing) => {
    const r = await runCli(['ingest-file', ...args, '--config', join(EXAMPLE, 'ledger.json'), '--store', 'sqlite::memory:']);
    expect(r).toMatchObject({ code: 2, stdout: '' });
    expect(r.stderr).toBe(`hedge-ledger ingest-file: ${missing}: hedge-ledger ingest-file <logs.jsonl> --tokens <tokens.json>\n`);
  });
});

describe('--config', () => {
  it('refuses an empty --config (an unset shell variable) rather than silently read no file, nor LEDGER_CONFIG', async () => {
    const env = { LEDGER_ORDERBOOK: '0xd2938e7c9fe3597f78832ce780feb61945c377d7', LEDGER_OWNERS: '0x1111111111111111111111111111111111111111', LEDGER_CONFIG: join(EXAMPLE, 'ledger.json') };
    const r = await runCli(['positions', '--config', '', '--store', 'sqlite::memory:'], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--config/);
    expect(r.stdout).toBe('');
  });
});

describe('--help', () => {
  it('no command at all is bad usage: the usage on stderr, exit 2, nothing on stdout (--help prints it on stdout, exit 0)', async () => {
    const r = await runCli([]);
    expect(r).toMatchObject({ code: 2, stdout: '', stderr: expect.stringMatching(/^usage: hedge-ledger <command>/) });
    expect(await runCli(['--help'])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^usage: hedge-ledger <command>/), stderr: '' });
  });

  it('schwab-sim --help names every option it takes, --host included', async () => {
    const r = await runCli(['schwab-sim', '--help']);
    expect(r.code).toBe(0);
    for (const option of ['--port', '--host', '--start', '--always-open']) expect(r.stdout).toContain(option);
  });
});

describe('an option given twice', () => {
  it.each([['positions', '--store'], ['trades', '--json'], ['ingest-file', '--tokens']])('%s refuses %s twice (exit 2) rather than take the last silently, opening no store', async (command, option) => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-cli-twice-'));
    const store = `sqlite:${join(dir, 'ledger.db')}`;
    const values: Record<string, string[]> = { '--store': [store, `sqlite:${join(dir, 'other.db')}`], '--json': [], '--tokens': [join(EXAMPLE, 'tokens.json')] };
    const twice = [option, ...values[option]!.slice(0, 1), option, ...values[option]!.slice(-1)];
    const positional = command === 'ingest-file' ? [join(EXAMPLE, 'logs.jsonl')] : [];
    const r = await runCli([command, ...positional, ...twice, '--config', join(EXAMPLE, 'ledger.json'), ...(option === '--store' ? [] : ['--store', store])]);
    expect(r).toMatchObject({ code: 2, stdout: '' });
    expect(r.stderr).toBe(`hedge-ledger ${command}: ${option} is given twice: give it once\n`);
    expect(existsSync(join(dir, 'ledger.db')) || existsSync(join(dir, 'other.db'))).toBe(false);
  });
});

describe('a mistyped option', () => {
  it.each([
    ['positions', '--jsn', '--json, --store, --config, --help'],
    ['run', '--brokr', '--once, --broker, --roles, --json, --store, --config, --help'],
  ])('%s %s is refused (exit 2) naming it and the options the command takes, not with a hint to pass it after --', async (command, option, takes) => {
    const r = await runCli([command, option, 'paper', '--config', join(EXAMPLE, 'ledger.json'), '--store', 'sqlite::memory:']);
    expect(r).toMatchObject({ code: 2, stdout: '' });
    expect(r.stderr).toBe(`hedge-ledger ${command}: unknown option "${option}": this command takes ${takes}\n`);
  });

  it('quotes a URL given with it by its scheme only: it may hold a password', async () => {
    const r = await runCli(['positions', '--stor=esdb://admin:s3cret@db:2113', '--config', join(EXAMPLE, 'ledger.json')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option "--stor"/);
    expect(r.stderr).not.toContain('s3cret');
  });
});

describe('auth without a known subcommand', () => {
  it.each([[[], 'auth needs a subcommand'], [['logn'], 'unknown auth subcommand "logn"'], [['https://127.0.0.1/?code=C0.secret'], 'unknown auth subcommand (a URL: https://…)']])('auth %j says what is wrong, then the usage (exit 2)', async (args, problem) => {
    const r = await runCli(['auth', ...args]);
    expect(r).toMatchObject({ code: 2, stdout: '' });
    expect(r.stderr).toBe(`hedge-ledger auth: ${problem}: auth login | auth status [--check] [--json]\n`);
  });
});

describe('a mistyped environment variable', () => {
  it('is warned about on stderr, naming the setting it was meant to be, rather than ignored without a word', async () => {
    const r = await runCli(['positions', '--config', join(EXAMPLE, 'ledger.json'), '--store', 'sqlite::memory:'], { env: { LEDGER_HTPP_PORT: '9090' } });
    expect(r.stderr).toContain('"msg":"env LEDGER_HTPP_PORT is no setting and is ignored (did you mean LEDGER_HTTP_PORT?)"');
    expect(r.stderr).not.toContain('9090');
  });
});

describe('a config file setting the environment also gives', () => {
  // The container image sets LEDGER_STORE, SCHWAB_TOKEN_FILE, LEDGER_HTTP_HOST and LEDGER_HTTP_PORT: a file's store would lose to it unseen.
  it('is warned about when the environment replaces it with another value, naming both and quoting neither (a URL may hold a password)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-cli-env-'));
    const file = join(dir, 'ledger.json');
    writeFileSync(file, JSON.stringify({ store: `sqlite:${join(dir, 'from-file.db')}`, orderbook: ORDERBOOK, owners: [OWNER] }));
    const replaced = await runCli(['positions', '--config', file], { env: { LEDGER_STORE: 'sqlite::memory:', LEDGER_OWNERS: OWNER } });
    expect(replaced).toMatchObject({ code: 0 });
    expect(replaced.stderr).toContain('"component":"config"');
    expect(replaced.stderr).toContain('"msg":"env LEDGER_STORE replaces config file key store (the environment wins)"');
    expect(replaced.stderr).not.toContain('from-file.db');
    expect(replaced.stderr).not.toContain('key owners'); // the same value: nothing is replaced
  });
});

describe('run without its settings', () => {
  it.each([[[], ['run needs rpcUrl']], [['--once'], []]])('run %j names every missing setting of its roles at once, not one role\'s at a time (exit 2, no store created)', async (once, more) => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-cli-run-'));
    const r = await runCli(['run', ...once, '--broker', 'schwab', '--store', `sqlite:${join(dir, 'ledger.db')}`], { env: { TOKEN_ENCRYPTION_KEY: '', SCHWAB_APP_SECRET: '' } });
    expect(r).toMatchObject({ code: 2, stdout: '' });
    for (const missing of ['run needs orderbook', 'run needs owners', ...more, 'run --broker schwab needs schwabAppKey', 'run --broker schwab needs env SCHWAB_APP_SECRET', 'run --broker schwab needs env TOKEN_ENCRYPTION_KEY']) expect(r.stderr).toContain(missing);
    expect(r.stderr.match(/run needs orderbook/g)).toHaveLength(1);
    expect(existsSync(join(dir, 'ledger.db'))).toBe(false);
  });
});

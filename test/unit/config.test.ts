import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, requireSettings, unknownEnvNames } from '../../src/config.ts';
import { executorTuning } from '../../src/services/executor.ts';

const OWNER = '0x1111111111111111111111111111111111111111';
const BOOK = '0xd2938e7c9fe3597f78832ce780feb61945c377d7';

function file(content: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), 'ledger-config-')), 'ledger.json');
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const problems = (f: () => unknown): string[] => {
  try {
    f();
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
  throw new Error('expected a ConfigError');
};

describe('configuration', () => {
  it('has defaults for everything optional', () => {
    const c = loadConfig({ env: {} });
    expect(c).toMatchObject({ store: 'sqlite:./data/ledger.db', chainId: 8453, deploymentBlock: 0, maxConsecutiveFailures: 3, broker: 'paper' });
  });

  it('reads the file and lets the environment win; flags win over both', () => {
    const path = file({ chainId: 10, owners: [OWNER.toUpperCase().replace('0X', '0x')], orderbook: BOOK, store: 'sqlite:a.db' });
    const c = loadConfig({ file: path, env: { LEDGER_CHAIN_ID: '8453', LEDGER_BROKER_SYMBOLS: 'SPLG=SPYM, BRK.B=BRKB' }, overrides: { store: 'sqlite:b.db' } });
    expect(c.chainId).toBe(8453);
    expect(c.owners).toEqual([OWNER]); // addresses are lowercased
    expect(c.brokerSymbols).toEqual({ SPLG: 'SPYM', 'BRK.B': 'BRKB' });
    expect(c.store).toBe('sqlite:b.db');
  });

  it('tells which file values the environment replaces with another: not an equal one (a map in another order), nor one a flag replaces anyway', () => {
    const path = file({ chainId: 10, owners: [OWNER], brokerSymbols: { SPLG: 'SPYM', 'BRK.B': 'BRKB' }, store: 'sqlite:a.db', httpPort: 9000 });
    const replaced: string[] = [];
    const env = { LEDGER_CHAIN_ID: '8453', LEDGER_OWNERS: OWNER.toUpperCase().replace('0X', '0x'), LEDGER_BROKER_SYMBOLS: 'BRK.B=BRKB,SPLG=SPYM', LEDGER_STORE: 'sqlite:b.db' };
    loadConfig({ file: path, env, overrides: { store: 'sqlite:c.db' }, onReplaced: (key) => replaced.push(key) });
    expect(replaced).toEqual(['chainId']);
  });

  it('takes owners comma-separated from the environment', () => {
    const other = '0x2222222222222222222222222222222222222222';
    expect(loadConfig({ env: { LEDGER_OWNERS: `${OWNER}, ${other}` } }).owners).toEqual([OWNER, other]);
  });

  it('refuses an empty list of owners, from the file or the environment (only commas): it would silently fold for no one', () => {
    const path = file({ owners: [OWNER] });
    expect(problems(() => loadConfig({ file: path, env: { LEDGER_OWNERS: ' , ,' } }))).toEqual([expect.stringMatching(/^env LEDGER_OWNERS → owners: expected at least one owner address, got \[\] \(/)]);
    expect(problems(() => loadConfig({ file: file({ owners: [] }), env: {} }))).toEqual([expect.stringMatching(/^config file key owners: expected at least one owner address, got \[\] \(/)]);
    expect(loadConfig({ file: path, env: { LEDGER_OWNERS: `${OWNER},` } }).owners).toEqual([OWNER]);
  });

  it('refuses a confirmation depth above 10,000 blocks, far past finality: a typo that would leave the ledger blind for hours', () => {
    expect(loadConfig({ env: { LEDGER_CONFIRMATIONS: '10000' } }).confirmations).toBe(10_000);
    expect(problems(() => loadConfig({ env: { LEDGER_CONFIRMATIONS: '1000000' } }))).toEqual([
      expect.stringMatching(/^env LEDGER_CONFIRMATIONS → confirmations: expected a block count up to 10000, "safe" or "finalized", got 1000000 \(/),
    ]);
  });

  it('takes the restore time as a UTC instant for the executor, and refuses one with a zone offset or no zone, which would be hours off', () => {
    const c = loadConfig({ env: { LEDGER_RECONCILE_SINCE: '2026-11-28T21:00:00Z' } });
    expect(executorTuning(c).reconcileSince).toEqual(new Date(Date.UTC(2026, 10, 28, 21)));
    expect(executorTuning(loadConfig({ env: {} })).reconcileSince).toBeUndefined();
    for (const bad of ['2026-11-28T21:00:00+01:00', '2026-11-28T21:00:00', '2026-02-30T21:00:00Z', 'yesterday']) {
      expect(problems(() => loadConfig({ env: { LEDGER_RECONCILE_SINCE: bad } }))).toEqual([
        expect.stringMatching(/^env LEDGER_RECONCILE_SINCE → reconcileSince: expected an ISO-8601 UTC time like 2026-11-28T21:00:00Z, got /),
      ]);
    }
  });

  it('refuses a file that gives a key twice, where JSON would silently keep the last', () => {
    const path = file(`{ "chainId": 8453, "orderbook": "${BOOK}", "chainId": 1 }`);
    expect(problems(() => loadConfig({ file: path, env: {} }))).toEqual([`config file ${path}: key "chainId" given twice (JSON would keep the last; give it once)`]);
  });

  it('refuses a secret put in the file as such, naming the variable it comes from, never quoting it', () => {
    const path = file({ schwabAppSecret: 'S3CRETVALUE', TOKEN_ENCRYPTION_KEY: 'K3YVALUE', schwabAppSecrt: 1 });
    const found = problems(() => loadConfig({ file: path, env: {} }));
    expect(found).toEqual([
      `config file ${path}: key "schwabAppSecret" is a secret, which comes from env SCHWAB_APP_SECRET only (never from a file)`,
      `config file ${path}: key "TOKEN_ENCRYPTION_KEY" is a secret, which comes from env TOKEN_ENCRYPTION_KEY only (never from a file)`,
      expect.stringMatching(/: unknown key "schwabAppSecrt" \(known: store, /),
    ]);
  });

  it('refuses a key given twice inside a setting too: brokerSymbols would silently hedge the last ticker given', () => {
    const path = file(`{ "brokerSymbols": { "SPLG": "SPYM", "BRK.B": "BRKB", "SPLG": "SPY" }, "owners": [{ "SPLG": 1 }] }`);
    expect(problems(() => loadConfig({ file: path, env: {} }))).toContainEqual(`config file ${path}: key "brokerSymbols.SPLG" given twice (JSON would keep the last; give it once)`);
    expect(problems(() => loadConfig({ file: path, env: {} })).join('\n')).not.toMatch(/owners.*given twice/);
  });

  it('quotes an env integer too large for a number as given, not as the rounded number it parses to', () => {
    expect(problems(() => loadConfig({ env: { LEDGER_DEPLOYMENT_BLOCK: '12345678901234567891' } }))).toEqual([
      expect.stringMatching(/^env LEDGER_DEPLOYMENT_BLOCK → deploymentBlock: expected a non-negative integer, got "12345678901234567891" \(/),
    ]);
  });

  it('quotes a file number past what a double holds (1e400) as Infinity, not as the null JSON.stringify makes of it', () => {
    expect(problems(() => loadConfig({ file: file('{"chainId": 1e400, "httpPort": -1e400}'), env: {} }))).toEqual([
      expect.stringMatching(/^config file key chainId: expected a positive integer, got Infinity \(/),
      expect.stringMatching(/^config file key httpPort: expected a port from 0 to 65535, got -Infinity \(/),
    ]);
  });

  it('refuses a brokerSymbols key that is not a base ticker rather than drop it: SPLG would silently go to the broker as SPLG', () => {
    const found = problems(() => loadConfig({ file: file({ brokerSymbols: { tSPLG: 'SPYM', GME: 'GME' } }), env: {} }));
    expect(found).toEqual([expect.stringMatching(/^config file key brokerSymbols\.tSPLG: expected an uppercase ticker like GME, got "tSPLG" \(/)]);
    expect(problems(() => loadConfig({ env: { LEDGER_BROKER_SYMBOLS: 'splg=SPYM' } }))).toEqual([expect.stringMatching(/^env LEDGER_BROKER_SYMBOLS → brokerSymbols\.splg: /)]);
    expect(problems(() => loadConfig({ env: { LEDGER_BROKER_SYMBOLS: '=SPYM' } }))).toHaveLength(1);
  });

  it('refuses a duration past what a timer takes (2^31-1 ms), which would fire after 1 ms and poll flat out', () => {
    expect(problems(() => loadConfig({ env: { LEDGER_PLACEMENT_SETTLE_MS: '2147483648', LEDGER_POLL_INTERVAL_MS: '99999999999' } }))).toEqual([
      expect.stringMatching(/^env LEDGER_POLL_INTERVAL_MS → pollIntervalMs: expected a whole number of milliseconds from 1 to 2147483647, got 99999999999/),
      expect.stringMatching(/^env LEDGER_PLACEMENT_SETTLE_MS → placementSettleMs: expected a whole number of milliseconds from 0 to 2147483647, got 2147483648/),
    ]);
    expect(loadConfig({ env: { LEDGER_PLACEMENT_SETTLE_MS: '2147483647' } }).placementSettleMs).toBe(2147483647);
  });

  it('quotes a bad key that is not plain text in the path, so that each problem stays one line', () => {
    const found = problems(() => loadConfig({ file: file({ brokerSymbols: { 'A\n  env LEDGER_STORE → store: ok': 'X' } }), env: {} }));
    expect(found).toEqual([expect.stringMatching(/^config file key brokerSymbols\."A\\n {2}env LEDGER_STORE → store: ok": expected an uppercase ticker like GME, got "A\\n/)]);
    expect(found[0]).not.toContain('\n');
  });

  it('refuses LEDGER_BROKER_SYMBOLS with a ticker given twice or a pair with two "=", quoting it, rather than keep one guess', () => {
    for (const text of ['SPLG=SPYM,SPLG=SPY', 'SPLG=SPYM=X']) {
      expect(problems(() => loadConfig({ env: { LEDGER_BROKER_SYMBOLS: text } }))).toEqual([expect.stringContaining(`→ brokerSymbols: expected { [K in an uppercase ticker like GME]: an uppercase ticker like GME }, got ${JSON.stringify(text)}`)]);
    }
  });

  it('names the key and the reason for every bad value at once', () => {
    const path = file({ chainId: -1, ownrs: [] });
    const found = problems(() => loadConfig({ file: path, env: { LEDGER_OWNERS: 'alice', LEDGER_DEPLOYMENT_BLOCK: 'soon', LEDGER_BROKER: 'ibkr' } }));
    expect(found).toHaveLength(5);
    expect(found.join('\n')).toMatch(/unknown key "ownrs"/);
    expect(found.join('\n')).toMatch(/config file key chainId: .*positive integer/);
    expect(found.join('\n')).toMatch(/env LEDGER_OWNERS → owners\.0: expected 0x-prefixed hex, got "alice"/);
    expect(found.join('\n')).toMatch(/env LEDGER_DEPLOYMENT_BLOCK → deploymentBlock: .*non-negative integer, got "soon"/);
    expect(found.join('\n')).toMatch(/env LEDGER_BROKER → broker: .*"ibkr"/);
  });

  it('refuses an empty or blank httpHost: node would bind every interface, exposing the API, where the default is 127.0.0.1', () => {
    expect(problems(() => loadConfig({ file: file({ httpHost: '' }), env: {} }))).toEqual([expect.stringMatching(/^config file key httpHost: /)]);
    expect(problems(() => loadConfig({ env: { LEDGER_HTTP_HOST: ' ' } }))).toEqual([expect.stringMatching(/^env LEDGER_HTTP_HOST → httpHost: /)]);
    expect(loadConfig({ env: { LEDGER_HTTP_HOST: '' } }).httpHost).toBe('127.0.0.1'); // an empty env value is unset
    expect(loadConfig({ file: file({ httpHost: '0.0.0.0' }), env: {} }).httpHost).toBe('0.0.0.0');
  });

  it('refuses an empty or blank Schwab app key, token file or account number, from the file or the environment: it would fail only at login or order time', () => {
    const path = file({ schwabAppKey: '', schwabTokenFile: ' ', schwabAccountNumber: '' });
    expect(problems(() => loadConfig({ file: path, env: { SCHWAB_APP_KEY: 'key\n' } }))).toEqual([
      expect.stringMatching(/^config file key schwabAppKey: expected text, not empty, without surrounding whitespace, got "" \(/),
      expect.stringMatching(/^env SCHWAB_APP_KEY → schwabAppKey: expected text, not empty, without surrounding whitespace, got "key\\n" \(/),
      expect.stringMatching(/^config file key schwabTokenFile: /),
      expect.stringMatching(/^config file key schwabAccountNumber: /),
    ]);
    expect(loadConfig({ env: { SCHWAB_APP_KEY: 'my app key', SCHWAB_TOKEN_FILE: './t.json', SCHWAB_ACCOUNT_NUMBER: '12345678' } })).toMatchObject({ schwabAppKey: 'my app key', schwabTokenFile: './t.json', schwabAccountNumber: '12345678' });
  });

  it('names a bad RPC URL without quoting it (its path or query may hold an API key)', () => {
    const found = problems(() => loadConfig({ env: { LEDGER_RPC_URL: 'htps://base.example/v2/SECRETKEY123', LEDGER_RPC_URLS: 'ftp://x/SECRET2' } }));
    expect(found).toHaveLength(2);
    expect(found.join('\n')).toMatch(/env LEDGER_RPC_URL → rpcUrl: /);
    expect(found.join('\n')).not.toMatch(/SECRET/);
  });

  it('refuses an RPC URL that no URL parser takes, naming its key, never quoting it', () => {
    const path = file({ rpcUrl: 'https://base.example:8545x/v2/SECRET1' });
    const found = problems(() => loadConfig({ file: path, env: { LEDGER_RPC_URLS: 'http://localhost:99999/v2/SECRET2, http://exa mple.com/SECRET3' } }));
    expect(found).toEqual([
      expect.stringMatching(/^config file key rpcUrl: expected an http\(s\) or ws\(s\) URL \(/),
      expect.stringMatching(/^env LEDGER_RPC_URLS → rpcUrls\.0: expected an http\(s\) or ws\(s\) URL \(/),
    ]);
    expect(found.join('\n')).not.toMatch(/SECRET/);
    expect(loadConfig({ env: { LEDGER_RPC_URL: 'wss://base.example:443/v2/key', LEDGER_RPC_URLS: 'http://[::1]:8545' } })).toMatchObject({ rpcUrl: 'wss://base.example:443/v2/key', rpcUrls: ['http://[::1]:8545'] });
  });

  it('refuses a Schwab base URL with a user:password, which fetch would quote in every error, naming its key, never quoting it', () => {
    const found = problems(() => loadConfig({ file: file({ schwabBaseUrl: 'https://gateway:SECRET1@api.example' }), env: { SCHWAB_BASE_URL: 'http://user:SECRET2@127.0.0.1:8182' } }));
    expect(found).toEqual([
      expect.stringMatching(/^config file key schwabBaseUrl: expected an http\(s\) URL without user:password \(/),
      expect.stringMatching(/^env SCHWAB_BASE_URL → schwabBaseUrl: expected an http\(s\) URL without user:password \(/),
    ]);
    expect(found.join('\n')).not.toMatch(/SECRET/);
    expect(loadConfig({ env: { SCHWAB_BASE_URL: 'http://127.0.0.1:8182' } }).schwabBaseUrl).toBe('http://127.0.0.1:8182');
  });

  it('refuses a Schwab callback URL that no URL parser takes (a port past 65535), which would fail only in the browser after the login', () => {
    for (const url of ['https://127.0.0.1:99999', 'https://xn--/callback', 'http://[::1/cb']) {
      expect(problems(() => loadConfig({ env: { SCHWAB_CALLBACK_URL: url } }))).toEqual([expect.stringMatching(/^env SCHWAB_CALLBACK_URL → schwabCallbackUrl: expected an http\(s\) URL, got /)]);
    }
    expect(loadConfig({ file: file({ schwabCallbackUrl: 'https://127.0.0.1:8182/callback' }), env: {} }).schwabCallbackUrl).toBe('https://127.0.0.1:8182/callback');
  });

  it('refuses a bad store URL from the file, the environment or --store, naming its source, never its password', () => {
    const path = file({ store: 'sqlite://host/ledger.db' });
    const found = problems(() => loadConfig({ file: path, env: { LEDGER_STORE: 'kurrentdb://admin:s3cret@db:2113' }, overrides: { store: 'esdb://' } }));
    expect(found).toEqual([
      expect.stringMatching(/^config file key store: sqlite: takes a path, not a host, got "sqlite:\/\/host\/ledger\.db" \(event store URL/),
      expect.stringMatching(/^env LEDGER_STORE → store: unknown kind of store, got "kurrentdb:\/\/\*\*\*@db:2113" \(/),
      expect.stringMatching(/^--store: the host is missing, got "esdb:\/\/" \(/),
    ]);
    expect(found.join('\n')).not.toMatch(/s3cret|admin/);
  });

  it('reports a file that is not JSON or not an object', () => {
    expect(problems(() => loadConfig({ file: file('{nope'), env: {} }))[0]).toMatch(/config file .*ledger\.json: .*JSON/);
    expect(problems(() => loadConfig({ file: file([1, 2]), env: {} }))[0]).toMatch(/expected a JSON object/);
    expect(problems(() => loadConfig({ file: '/nonexistent/ledger.json', env: {} }))[0]).toMatch(/ENOENT/);
  });

  it('reports a JSON syntax error in the file without quoting the text around it (an RPC key, a store password)', () => {
    const found = [
      '{"rpcUrls": ["https://base.example/v2/SECRET1KEY", https://other.example/v2/k]}', // node would quote ..."1KEY", https://o"...
      `{"rpcUrl": 'https://x/SECRET2'}`,
      '{"k": SECRET3}', // a text this short node would quote whole
    ].flatMap((text) => problems(() => loadConfig({ file: file(text), env: {} })));
    expect(found).toEqual([
      expect.stringMatching(/^config file .*ledger\.json: Unexpected token 'h' \(not valid JSON\)$/),
      expect.stringMatching(/^config file .*ledger\.json: Unexpected token ''' \(not valid JSON\)$/),
      expect.stringMatching(/^config file .*ledger\.json: Unexpected token 'S' \(not valid JSON\)$/),
    ]);
    expect(found.join('\n')).not.toMatch(/SECRET|KEY|"/);
  });

  it('reads a file that starts with a UTF-8 byte order mark, as some editors save it', () => {
    expect(loadConfig({ file: file(`\uFEFF${JSON.stringify({ chainId: 10 })}`), env: {} }).chainId).toBe(10);
  });

  it('says which command needs a missing setting and how to give it', () => {
    const c = loadConfig({ env: {} });
    expect(problems(() => requireSettings(c, ['orderbook', 'owners'], 'positions'))).toEqual([
      expect.stringMatching(/^positions needs orderbook \(env LEDGER_ORDERBOOK or config file key "orderbook"\)/),
      expect.stringMatching(/^positions needs owners \(env LEDGER_OWNERS/),
    ]);
  });
});

describe('unknownEnvNames', () => {
  it('names LEDGER_* and SCHWAB_* variables nothing reads, with the setting a typo was meant to be, and never their values', () => {
    const env = { LEDGER_HTPP_PORT: '9090', SCHWAB_APP_SECRT: 'secret', LEDGER_FOO: '1', LEDGER_HTTP_PORT: '8081', LEDGER_CONFIG: 'x.json', LEDGER_DEBUG: '1', LEDGER_TEST_LOGS: 'info', TOKEN_ENCRYPTION_KEY: 'k', SCHWAB_APP_SECRET: 's', PATH: '/bin' };
    expect(unknownEnvNames(env)).toEqual([
      { name: 'LEDGER_FOO' },
      { name: 'LEDGER_HTPP_PORT', meant: 'LEDGER_HTTP_PORT' },
      { name: 'SCHWAB_APP_SECRT', meant: 'SCHWAB_APP_SECRET' },
    ]);
  });
});

describe('docs/configuration.md', () => {
  it('lists every setting with its env name and file key', async () => {
    const { readFileSync } = await import('node:fs');
    const { settings, secrets } = await import('../../src/config.ts');
    const page = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    const missing = Object.entries(settings).filter(([key, s]) => !page.includes(`| \`${s.env}\` | \`${key}\` |`)).map(([key]) => key);
    expect(missing).toEqual([]);
    expect(Object.values(secrets).filter((s) => !page.includes(`\`${s.env}\``))).toEqual([]);
  });
});

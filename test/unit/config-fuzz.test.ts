/**
 * Property tests of the configuration's refusals and round trips: every setting, from the file and
 * from the environment; the file itself; secrets never quoted; the real binary's exit code.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, readSecret, settings } from '../../src/config.ts';
import { tokenFileOf } from '../../src/broker/schwab/index.ts';
import { runCli } from '../support/cli.ts';

type Key = keyof typeof settings;
const KEYS = Object.keys(settings) as Key[];
const DIR = mkdtempSync(join(tmpdir(), 'ledger-config-fuzz-'));
const FILE = join(DIR, 'ledger.json');
afterAll(() => rmSync(DIR, { recursive: true, force: true }));
/** CONFIG_FUZZ_SCALE=20 for a longer campaign; 1 keeps the suite fast. */
const SCALE = Number(process.env['CONFIG_FUZZ_SCALE'] ?? 1);
const runs = (n: number) => ({ numRuns: Math.round(n * SCALE) });
const RUNS = runs(150);

function writeConfig(content: unknown): string {
  writeFileSync(FILE, typeof content === 'string' ? content : JSON.stringify(content));
  return FILE;
}

/** The problems a load reports, or undefined when it loads. */
function problemsOf(f: () => unknown): string[] | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
}

// ---- value generators, by kind ----

const alnum = (min: number, max: number) => fc.stringMatching(new RegExp(`^[A-Za-z0-9]{${min},${max}}$`));
/** A secret: two runs of 8+ letters and digits, checked for separately (a symbol may sit between them). */
const secretParts = fc.tuple(alnum(8, 14), alnum(8, 14));
const shows = (text: string, [a, b]: readonly [string, string]) => text.includes(a) || text.includes(b);

/** Text no setting takes: blank, unicode, very long, with a secret-looking tail. */
const junkText = fc.oneof(
  fc.constantFrom(' ', '\t', '  \n ', 'NaN', 'Infinity', '-Infinity', 'null', 'true', '{}', '[]', 'ünïcödé', '日本語', '🚀', '\u0000', '\u202e'),
  fc.string({ minLength: 1, maxLength: 10 }).map((s) => `~${s}`),
  fc.integer({ min: 200, max: 3000 }).map((n) => 'x'.repeat(n)),
  alnum(8, 20).map((s) => `~SECRET${s}`),
);
/** Non-string JSON values. */
const nonStringJson = fc.oneof(fc.boolean(), fc.constant(null), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.array(fc.integer(), { maxLength: 2 }), fc.constant({ a: 1 }));
/** Non-number JSON values (a string of digits included: the file takes numbers as numbers). */
const nonNumberJson = fc.oneof(fc.boolean(), fc.constant(null), fc.string({ maxLength: 12 }), fc.integer({ min: 1, max: 100 }).map(String), fc.array(fc.integer(), { maxLength: 2 }), fc.constant({ n: 1 }));

interface IntRange {
  readonly min: number;
  readonly max: number;
}

/** Integers in [min, max]: file JSON number, env text (with blanks around, leading zeros), decoded value. */
function validInt({ min, max }: IntRange): fc.Arbitrary<Valid> {
  return fc.tuple(fc.oneof(fc.integer({ min, max: Math.min(max, min + 1000) }), fc.integer({ min, max }), fc.constantFrom(min, max)), fc.constantFrom('', ' ', '0'), fc.constantFrom('', ' '))
    .map(([n, pre, post]) => ({ file: n, env: `${pre === '0' ? (n > 0 ? '0' : '') : pre}${n}${post}`, decoded: n }));
}

/** Text an integer setting refuses from the environment. */
function badIntText({ min, max }: IntRange): fc.Arbitrary<string> {
  return fc.oneof(
    junkText,
    fc.integer({ min: 1, max: 1e6 }).map((n) => `0x${n.toString(16)}`),
    fc.double({ min: 0.001, max: 1e6, noNaN: true }).filter((d) => !Number.isInteger(d)).map(String),
    fc.integer({ min: 1, max: 9 }).map((n) => `${n}e3`),
    fc.integer({ min: 1, max: 1e6 }).map((n) => `+${n}`),
    fc.integer({ min: 1, max: 1e6 }).map((n) => `${n}ms`),
    fc.integer({ min: 1, max: 1e6 }).map((n) => `${n.toLocaleString('en-US')}0,000`.replace(/,/g, '_')),
    fc.constantFrom('１２', '٣', '99999999999999999999', '9007199254740993'),
    ...(min > Number.MIN_SAFE_INTEGER ? [fc.integer({ min: Number.MIN_SAFE_INTEGER, max: min - 1 }).map(String)] : []),
    ...(max < Number.MAX_SAFE_INTEGER ? [fc.integer({ min: max + 1, max: Number.MAX_SAFE_INTEGER }).map(String)] : []),
  );
}

/** JSON (as text: 1e400 has no other form) an integer setting refuses from the file. */
function badIntJson({ min, max }: IntRange): fc.Arbitrary<string> {
  return fc.oneof(
    nonNumberJson.map((v) => JSON.stringify(v)),
    fc.double({ min: -1e6, max: 1e6, noNaN: true }).filter((d) => !Number.isInteger(d)).map((d) => JSON.stringify(d)),
    fc.constantFrom('1e400', '-1e400', '9007199254740993', '1e300'),
    ...(min > Number.MIN_SAFE_INTEGER ? [fc.integer({ min: Number.MIN_SAFE_INTEGER, max: min - 1 }).map(String)] : []),
    ...(max < Number.MAX_SAFE_INTEGER ? [fc.integer({ min: max + 1, max: Number.MAX_SAFE_INTEGER }).map(String)] : []),
  );
}

interface Valid {
  /** The value as the file gives it (JSON). */
  readonly file: unknown;
  /** The same as env text. */
  readonly env: string;
  readonly decoded: unknown;
}

interface Kind {
  readonly valid: fc.Arbitrary<Valid>;
  /** JSON text of a value the file gives that must be refused. */
  readonly badFile: fc.Arbitrary<string>;
  /** Env text that must be refused (never empty: empty is unset). */
  readonly badEnv: fc.Arbitrary<string>;
}

const json = (a: fc.Arbitrary<unknown>) => a.map((v) => JSON.stringify(v));
const same = (a: fc.Arbitrary<string>): fc.Arbitrary<Valid> => a.map((s) => ({ file: s, env: s, decoded: s }));

const MAX_MS = 2 ** 31 - 1;
const intKind = (range: IntRange): Kind => ({ valid: validInt(range), badFile: badIntJson(range), badEnv: badIntText(range) });
const positiveInt = intKind({ min: 1, max: Number.MAX_SAFE_INTEGER });
const millisFrom = (min: number) => intKind({ min, max: MAX_MS });

const hex40 = fc.stringMatching(/^[0-9a-fA-F]{40}$/);
const address = hex40.map((h) => `0x${h}`);
const badAddress = fc.oneof(junkText, fc.stringMatching(/^0x[0-9a-f]{1,39}$/), fc.stringMatching(/^0x[0-9a-f]{41,64}$/), hex40, fc.stringMatching(/^0x[0-9a-f]{0,38}[g-z][0-9a-f]{1}$/), address.map((a) => `${a} `), address.map((a) => a.toUpperCase()));
const ticker = fc.stringMatching(/^[A-Z][A-Z0-9.]{0,5}$/);
const badTicker = fc.oneof(fc.constantFrom('', ' ', 'splg', 'tSPLG', '1ABC', '.X', 'GM E', 'SPLG ', 'ÄBC', '__proto__'), junkText.filter((s) => !/^[A-Z][A-Z0-9.]*$/.test(s) && !s.includes(',') && !s.includes('=')));
// Not xn--…: an IDNA prefix, which a URL parser refuses unless valid punycode follows.
const host = fc.oneof(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}(\.[a-z]{2,5}){0,2}$/).filter((h) => !/(^|\.)xn--/.test(h)), fc.constantFrom('127.0.0.1', 'localhost', '[::1]'));
const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }).map((p) => (p === undefined ? '' : `:${p}`));
const urlPath = fc.stringMatching(/^(\/[A-Za-z0-9_-]{1,12}){0,3}$/);
const rpcUrl = fc.tuple(fc.constantFrom('http', 'https', 'ws', 'wss'), host, port, urlPath, fc.option(alnum(1, 20), { nil: undefined }))
  .map(([scheme, h, p, path, key]) => `${scheme}://${h}${p}${path}${key === undefined ? '' : `?key=${key}`}`);
const badRpcUrl = fc.oneof(
  junkText,
  fc.tuple(fc.constantFrom('htps', 'ftp', 'file', 'HTTP:', 'http:/', ''), host, urlPath).map(([s, h, path]) => `${s}://${h}${path}`),
  fc.tuple(host, fc.integer({ min: 65536, max: 10_000_000 }), urlPath).map(([h, p, path]) => `https://${h}:${p}${path}`),
  fc.tuple(host, host, urlPath).map(([a, b, path]) => `https://${a} ${b}${path}`),
  host.map((h) => `${h}:8545`),
);
const httpUrl = fc.tuple(fc.constantFrom('http', 'https'), host, port, urlPath).map(([s, h, p, path]) => `${s}://${h}${p}${path}`);
const badHttpUrl = fc.oneof(junkText, fc.tuple(host, fc.integer({ min: 65536, max: 1e6 })).map(([h, p]) => `https://${h}:${p}`), fc.tuple(fc.constantFrom('ws', 'ftp', 'htps', ''), host).map(([s, h]) => `${s}://${h}`), httpUrl.map((u) => ` ${u}`), host.map((h) => `https://${h}/a b`));
const sqlitePath = fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}(\/[A-Za-z0-9_.-]{1,12}){0,2}$/);
const storeUrl = fc.oneof(
  fc.constant('sqlite::memory:'),
  sqlitePath.map((p) => `sqlite:${p}`),
  sqlitePath.map((p) => `sqlite:///${p}`),
  fc.tuple(fc.constantFrom('esdb', 'esdb+discover'), fc.option(fc.tuple(alnum(1, 8), alnum(1, 12)), { nil: undefined }), host.filter((h) => !h.startsWith('[')), port, fc.constantFrom('', '?tls=false', '?tls=true&nodePreference=leader', '/?keepAliveTimeout=10000', '?keepAliveInterval=-1&keepAliveTimeout=-1&defaultDeadline=1'))
    .map(([s, auth, h, p, q]) => `${s}://${auth === undefined ? '' : `${auth[0]}:${auth[1]}@`}${h}${p}${q}`),
);
const badStoreUrl = fc.oneof(
  junkText.filter((s) => !s.trim().startsWith('sqlite:')),
  fc.constantFrom('sqlite:', 'sqlite://host/x.db', 'esdb://', 'esdb://db:2113/ledger', 'esdb://db:99999', 'esdb://db:2113?tls=maybe', 'esdb://db:2113?bogus=1', 'esdb://db:2113?keepAliveInterval=-2', 'esdb://db:2113?defaultDeadline=0', 'postgres://db/x', 'esdb://a b:2113'),
);
const iso = fc.date({ min: new Date('1971-01-01T00:00:00Z'), max: new Date('2099-12-31T23:59:59Z'), noInvalidDate: true })
  .chain((d) => fc.constantFrom(d.toISOString(), d.toISOString().replace(/\.\d{3}Z$/, 'Z')));
const badIso = fc.oneof(junkText, iso.map((s) => s.replace('Z', '+01:00')), iso.map((s) => s.replace('Z', '')), iso.map((s) => s.replace('T', ' ')), fc.constantFrom('2026-02-30T21:00:00Z', '2026-13-01T00:00:00Z', '2026-11-28T24:00:00Z', 'yesterday', '1764363600000'));
const nonBlankText = fc.oneof(alnum(1, 24), fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9 ./_-]{0,30}[A-Za-z0-9]$/));
const blank = fc.constantFrom(' ', '  ', '\t', ' x', 'x ', '\nx');

const kinds: Record<Key, Kind> = {
  store: { valid: same(storeUrl), badFile: fc.oneof(json(badStoreUrl), json(nonStringJson)), badEnv: badStoreUrl },
  chainId: positiveInt,
  orderbook: { valid: address.map((a) => ({ file: a, env: a, decoded: a.toLowerCase() })), badFile: fc.oneof(json(badAddress), json(nonStringJson)), badEnv: badAddress },
  owners: {
    valid: fc.array(address, { minLength: 1, maxLength: 3 }).map((as) => ({ file: as, env: as.join(', '), decoded: as.map((a) => a.toLowerCase()) })),
    badFile: fc.oneof(json(fc.constant([])), json(fc.array(badAddress, { minLength: 1, maxLength: 2 })), json(address), json(nonStringJson.filter((v) => !Array.isArray(v) || v.length > 0))),
    // The env list is split at commas and trimmed: the bad element must stay bad trimmed.
    badEnv: fc.oneof(fc.constantFrom(',', ' , ', ' '), fc.tuple(fc.array(address, { maxLength: 2 }), badAddress.filter((s) => !s.includes(',') && s.trim() !== '' && !/^0x[0-9a-fA-F]{40}$/.test(s.trim()))).map(([as, bad]) => [...as, bad].join(','))),
  },
  rpcUrl: { valid: same(rpcUrl), badFile: fc.oneof(json(badRpcUrl), json(nonStringJson)), badEnv: badRpcUrl },
  rpcUrls: {
    valid: fc.array(rpcUrl, { maxLength: 3 }).filter((us) => us.length > 0).map((us) => ({ file: us, env: us.join(','), decoded: us })),
    badFile: fc.oneof(json(rpcUrl), json(fc.array(badRpcUrl, { minLength: 1, maxLength: 2 })), json(fc.constantFrom(null, 1, true, { url: 'https://x' }))),
    badEnv: fc.tuple(fc.array(rpcUrl, { maxLength: 2 }), badRpcUrl.filter((s) => !s.includes(',') && s.trim() !== '')).map(([us, bad]) => [...us, bad].join(',')),
  },
  deploymentBlock: intKind({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  confirmations: {
    valid: fc.oneof(validInt({ min: 0, max: 10_000 }), same(fc.constantFrom('safe', 'finalized'))),
    badFile: fc.oneof(badIntJson({ min: 0, max: 10_000 }).filter((s) => !['"safe"', '"finalized"'].includes(s)), json(fc.constantFrom('latest', 'SAFE', ' safe', 'finalised'))),
    badEnv: fc.oneof(badIntText({ min: 0, max: 10_000 }), fc.constantFrom('latest', 'SAFE', 'finalised', 'safe!')),
  },
  chainPollIntervalMs: millisFrom(1),
  rpcConcurrency: positiveInt,
  maxBlockRange: positiveInt,
  rpcDeadlineMs: millisFrom(1),
  maxConsecutiveFailures: positiveInt,
  brokerSymbols: {
    valid: fc.uniqueArray(fc.tuple(ticker, ticker), { selector: ([k]) => k, maxLength: 3 }).filter((ps) => ps.length > 0)
      .map((ps) => ({ file: Object.fromEntries(ps), env: ps.map(([k, v]) => `${k}=${v}`).join(','), decoded: Object.fromEntries(ps) })),
    badFile: fc.oneof(json(fc.tuple(badTicker, ticker).map(([k, v]) => ({ [k]: v }))), json(fc.tuple(ticker, badTicker).map(([k, v]) => ({ [k]: v }))), json(fc.tuple(ticker, nonStringJson).map(([k, v]) => ({ [k]: v }))), json(fc.constantFrom([], 'SPLG=SPYM', 1, null))),
    badEnv: fc.oneof(
      fc.tuple(badTicker.filter((s) => s.trim() !== '' && s.trim() === s), ticker).map(([k, v]) => `${k}=${v}`),
      fc.tuple(ticker, badTicker.filter((s) => s.trim() !== '' && s.trim() === s)).map(([k, v]) => `${k}=${v}`),
      ticker.map((k) => `${k}=${k}=${k}`),
      fc.tuple(ticker, ticker, ticker).map(([k, a, b]) => `${k}=${a},${k}=${b}`),
      ticker,
    ),
  },
  broker: { valid: same(fc.constantFrom('paper', 'schwab')), badFile: fc.oneof(json(fc.constantFrom('Paper', 'ibkr', ' paper', '')), json(nonStringJson)), badEnv: fc.oneof(junkText, fc.constantFrom('Paper', 'ibkr', 'schwab ', ' paper')) },
  logLevel: { valid: same(fc.constantFrom('trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent')), badFile: fc.oneof(json(fc.constantFrom('INFO', 'verbose', '')), json(nonStringJson)), badEnv: fc.oneof(junkText, fc.constantFrom('INFO', 'verbose', 'warning')) },
  pollIntervalMs: millisFrom(1),
  openOrderDeadlineMs: millisFrom(1),
  placementSettleMs: millisFrom(0),
  reconcileSkewMs: millisFrom(0),
  reconcileSince: { valid: same(iso), badFile: fc.oneof(json(badIso), json(nonStringJson)), badEnv: badIso },
  executorLockStaleMs: millisFrom(1000),
  paperFillDelayMs: millisFrom(0),
  schwabBaseUrl: {
    valid: same(httpUrl),
    badFile: fc.oneof(json(badHttpUrl), json(nonStringJson), json(fc.tuple(alnum(1, 8), alnum(1, 8), host).map(([u, p, h]) => `https://${u}:${p}@${h}`))),
    badEnv: fc.oneof(badHttpUrl, fc.tuple(alnum(1, 8), alnum(1, 8), host).map(([u, p, h]) => `https://${u}:${p}@${h}`), fc.tuple(host, fc.integer({ min: 65536, max: 1e6 })).map(([h, p]) => `https://${h}:${p}`)),
  },
  schwabAppKey: { valid: same(nonBlankText), badFile: fc.oneof(json(fc.constantFrom('')), json(blank), json(nonStringJson)), badEnv: blank },
  schwabCallbackUrl: { valid: same(httpUrl), badFile: fc.oneof(json(badHttpUrl), json(nonStringJson)), badEnv: badHttpUrl },
  schwabTokenFile: { valid: same(nonBlankText), badFile: fc.oneof(json(fc.constantFrom('')), json(blank), json(nonStringJson)), badEnv: blank },
  schwabAccountNumber: { valid: same(nonBlankText), badFile: fc.oneof(json(fc.constantFrom('')), json(blank), json(nonStringJson)), badEnv: blank },
  schwabRequestTimeoutMs: millisFrom(1),
  httpHost: { valid: same(fc.oneof(host, fc.constantFrom('0.0.0.0', '::', '::1'))), badFile: fc.oneof(json(fc.constantFrom('')), json(blank), json(nonStringJson)), badEnv: blank },
  httpPort: intKind({ min: 0, max: 65535 }),
  maxIngestLagBlocks: positiveInt,
  ingestStallMs: millisFrom(1),
  shutdownTimeoutMs: millisFrom(1),
  httpRetention: positiveInt,
};

const keyArb = fc.constantFrom(...KEYS);
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** `env NAME → key: reason` or `config file key key(.path): reason`, the reason not empty. */
const envProblem = (key: Key) => new RegExp(`^env ${settings[key].env} → ${key}(\\..+?)?: \\S`);
const fileProblem = (key: Key) => new RegExp(`^config file key ${escape(key)}(\\..+?)?: \\S`);
const fileText = (entries: readonly (readonly [string, string])[]) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${v}`).join(', ')}}`;

describe('every setting, fuzzed', () => {
  it('lists a kind of value for every setting', () => {
    expect(Object.keys(kinds).sort()).toEqual([...KEYS].sort());
  });

  it('refuses a bad value from the environment, naming the env variable, the key and a reason', () => {
    const bad = keyArb.chain((key) => fc.tuple(fc.constant(key), kinds[key].badEnv));
    fc.assert(fc.property(bad, ([key, text]) => {
      const found = problemsOf(() => loadConfig({ env: { [settings[key].env]: text } }));
      expect(found, `${key}=${JSON.stringify(text)}`).toEqual([expect.stringMatching(envProblem(key))]);
      expect(found![0]).not.toMatch(/\n/);
    }), runs(600));
  });

  it('refuses a bad value from the file, naming the file key and a reason', () => {
    const bad = keyArb.chain((key) => fc.tuple(fc.constant(key), kinds[key].badFile));
    fc.assert(fc.property(bad, ([key, value]) => {
      const found = problemsOf(() => loadConfig({ file: writeConfig(fileText([[key, value]])), env: {} }));
      expect(found, `${key}: ${value}`).toEqual([expect.stringMatching(fileProblem(key))]);
      expect(found![0]).not.toMatch(/\n/);
      if (!value.includes('null')) expect(found![0]).not.toMatch(/got null/); // 1e400 is not null
    }), runs(600));
  });

  it('names every bad setting when several are bad at once, from both sources', () => {
    const bads = fc.uniqueArray(keyArb, { minLength: 2, maxLength: 8 }).chain((keys) =>
      fc.tuple(...keys.map((key) => fc.tuple(fc.constant(key), fc.boolean(), kinds[key].badEnv, kinds[key].badFile))));
    fc.assert(fc.property(bads, (cases) => {
      const env = Object.fromEntries(cases.filter(([, viaEnv]) => viaEnv).map(([key, , text]) => [settings[key].env, text]));
      const path = writeConfig(fileText(cases.filter(([, viaEnv]) => !viaEnv).map(([key, , , value]) => [key, value])));
      const found = problemsOf(() => loadConfig({ file: path, env }));
      expect(found).toHaveLength(cases.length);
      for (const [key, viaEnv] of cases) expect(found).toContainEqual(expect.stringMatching(viaEnv ? envProblem(key) : fileProblem(key)));
    }), RUNS);
  });

  it('takes every valid value from the file and from the environment, decoded alike', () => {
    const good = keyArb.chain((key) => fc.tuple(fc.constant(key), kinds[key].valid));
    fc.assert(fc.property(good, ([key, v]) => {
      expect(loadConfig({ env: { [settings[key].env]: v.env } })[key], `env ${key}=${JSON.stringify(v.env)}`).toEqual(v.decoded);
      expect(loadConfig({ file: writeConfig({ [key]: v.file }), env: {} })[key], `file ${key}: ${JSON.stringify(v.file)}`).toEqual(v.decoded);
    }), runs(600));
  });

  it('takes a whole valid configuration at once, and the environment wins over the file key by key', () => {
    const whole = fc.tuple(...KEYS.map((key) => fc.tuple(kinds[key].valid, kinds[key].valid, fc.constantFrom('file', 'env', 'both'))));
    fc.assert(fc.property(whole, (values) => {
      const file: Record<string, unknown> = {};
      const env: Record<string, string> = {};
      values.forEach(([inFile, inEnv, where], i) => {
        const key = KEYS[i]!;
        if (where !== 'env') file[key] = inFile.file;
        if (where !== 'file') env[settings[key].env] = inEnv.env;
      });
      const config = loadConfig({ file: writeConfig(file), env });
      values.forEach(([inFile, inEnv, where], i) => expect(config[KEYS[i]!], KEYS[i]).toEqual(where === 'file' ? inFile.decoded : inEnv.decoded));
    }), runs(100));
  });
});

describe('secrets, fuzzed', () => {
  /** Bad values that carry a secret: a store URL's password, an RPC URL's key in its path or query, a Schwab URL's password. */
  const carriers = secretParts.chain((secret) => {
    const [a, b] = secret;
    const sym = fc.constantFrom('', '@', '/', '?', '#', '%40', '!');
    return fc.tuple(fc.constant(secret), fc.oneof(
      fc.tuple(sym, fc.constantFrom('esdb://db:99999', 'esdb://db:2113/ledger', 'kurrentdb://db:2113', 'esdb://db:2113?tls=maybe', 'esdb://db:2113?bogus=1', 'esdb://db:2113?keepAliveInterval=-2', 'esdb://db:2113?defaultDeadline=0', 'esdb://:2113', 'esdb://db:2113?tlsVerifyCert=false'))
        .map(([s, rest]) => ['store', rest.replace('://', `://admin:${a}${s}${b}@`)] as const),
      fc.tuple(sym, fc.constantFrom('htps://rpc.example/v2/', 'https://rpc.example:99999/v2/', 'https://rpc example/', 'ftp://rpc.example/?key=', 'https://rpc.example:8545x/?apikey=', 'rpc.example/'), fc.constantFrom('rpcUrl', 'rpcUrls'))
        .map(([s, base, key]) => [key, `${base}${a}${s}${b}`] as const),
      fc.constantFrom('https://', 'http://').map((s) => ['schwabBaseUrl', `${s}user:${a}${b}@api.example`] as const),
    ));
  });

  it('never quotes a secret a bad store, RPC or Schwab URL carries, from the file, the environment or --store', () => {
    fc.assert(fc.property(carriers, fc.constantFrom('env', 'file', 'flag'), ([secret, [key, value]], where) => {
      fc.pre(where !== 'flag' || key === 'store');
      const flag = where === 'flag';
      const found = problemsOf(() => loadConfig({
        file: where === 'file' ? writeConfig({ [key]: key === 'rpcUrls' ? [value] : value }) : undefined,
        env: where === 'env' ? { [settings[key].env]: value } : {},
        overrides: flag ? { store: value } : {},
      }));
      const text = found?.join('\n') ?? '';
      expect(found, `${key} ${value}`).toHaveLength(1);
      expect(shows(text, secret), text).toBe(false);
    }), runs(400));
  });

  it('never quotes SCHWAB_APP_SECRET or TOKEN_ENCRYPTION_KEY beside bad settings, nor a bad TOKEN_ENCRYPTION_KEY', () => {
    const badKey = fc.oneof(secretParts.map(([a, b]) => `${a}${b}`), secretParts.map(([a, b]) => `${a} ${b}`), secretParts.map(([a, b]) => `${a}${b}${a}${b}${a}${b}${a}`));
    fc.assert(fc.property(secretParts, secretParts, badKey, (appSecret, keyParts, tokenKey) => {
      const env = { SCHWAB_APP_SECRET: appSecret.join(''), TOKEN_ENCRYPTION_KEY: tokenKey, LEDGER_CHAIN_ID: 'x', LEDGER_STORE: 'esdb://db:99999' };
      const found = problemsOf(() => loadConfig({ env }))!;
      expect(found).toHaveLength(2);
      expect(shows(found.join('\n'), appSecret) || found.join('\n').includes(tokenKey.slice(0, 8))).toBe(false);
      const config = loadConfig({ env: { TOKEN_ENCRYPTION_KEY: tokenKey } });
      const refused = problemsOf(() => tokenFileOf(config, 'auth', { TOKEN_ENCRYPTION_KEY: tokenKey }))!;
      expect(refused).toEqual([expect.stringMatching(/^env TOKEN_ENCRYPTION_KEY: /)]);
      expect(shows(refused.join('\n'), keyParts) || refused.join('\n').includes(tokenKey.slice(0, 8)), refused[0]).toBe(false);
      expect(readSecret('schwabAppSecret', 'auth', { SCHWAB_APP_SECRET: ` ${appSecret.join('')}\n` })).toBe(appSecret.join(''));
    }), RUNS);
  });

  it('never quotes the text around a JSON syntax error in the file (an RPC key, a store password)', () => {
    const broken = fc.tuple(secretParts, fc.nat(), fc.constantFrom('cut', 'insert', 'delete'), fc.constantFrom('x', '"', ',', '}', ']', ':', '\u0001', '\\', "'", '1', ' '));
    fc.assert(fc.property(broken, ([secret, at, how, char]) => {
      const good = JSON.stringify({ rpcUrl: `https://rpc.example/v2/${secret[0]}`, store: `esdb://admin:${secret[1]}@db:2113`, rpcUrls: [`wss://rpc.example/?key=${secret[0]}`] }, null, 1);
      const i = at % good.length;
      const text = how === 'cut' ? good.slice(0, i) : how === 'insert' ? `${good.slice(0, i)}${char}${good.slice(i)}` : `${good.slice(0, i)}${good.slice(i + 1)}`;
      let valid = true;
      try {
        JSON.parse(text);
      } catch {
        valid = false;
      }
      fc.pre(!valid);
      const found = problemsOf(() => loadConfig({ file: writeConfig(text), env: {} }))!;
      expect(found).toEqual([expect.stringMatching(new RegExp(`^config file ${escape(FILE)}: \\S`))]);
      const reason = found[0]!.slice(`config file ${FILE}: `.length);
      // Any 6 characters of it with a letter and a digit (an English word in the reason is no leak).
      const windows = secret.flatMap((part) => [...part].map((_, j) => part.slice(j, j + 6))).filter((w) => w.length === 6 && /\d/.test(w) && /[A-Za-z]/.test(w));
      for (const w of windows) expect(reason, text).not.toContain(w);
    }), runs(300));
  });
});

describe('the config file itself, fuzzed', () => {
  it('refuses a file that is not a JSON object, naming the file', () => {
    const notObject = fc.oneof(json(fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.constant(null), fc.array(fc.jsonValue(), { maxLength: 3 }))), fc.string({ maxLength: 30 }).filter((s) => {
      try {
        const v: unknown = JSON.parse(s.replace(/^\uFEFF/, ''));
        return typeof v !== 'object' || v === null || Array.isArray(v);
      } catch {
        return true;
      }
    }));
    fc.assert(fc.property(notObject, fc.boolean(), (text, bom) => {
      const found = problemsOf(() => loadConfig({ file: writeConfig(`${bom ? '\uFEFF' : ''}${text}`), env: {} }));
      expect(found, JSON.stringify(text)).toEqual([expect.stringMatching(new RegExp(`^config file ${escape(FILE)}: (expected a JSON object|.*JSON)`))]);
    }), RUNS);
  });

  it('refuses every unknown key by name (as the docs say), and a secret put in the file says where it goes', () => {
    const unknownKey = fc.string({ minLength: 1, maxLength: 20 }).filter((k) => !(KEYS as string[]).includes(k) && k !== '__proto__');
    fc.assert(fc.property(fc.uniqueArray(unknownKey, { minLength: 1, maxLength: 4 }), fc.boolean(), (names, bom) => {
      const text = `${bom ? '\uFEFF' : ''}${JSON.stringify({ chainId: 10, ...Object.fromEntries(names.map((k) => [k, 1])) })}`;
      const found = problemsOf(() => loadConfig({ file: writeConfig(text), env: {} }))!;
      expect(found).toHaveLength(names.length);
      for (const k of names) expect(found.some((p) => p.startsWith(`config file ${FILE}: unknown key ${JSON.stringify(k)} (known: `))).toBe(true);
    }), RUNS);
    const found = problemsOf(() => loadConfig({ file: writeConfig({ schwabAppSecret: 'S3CRETVALUE', TOKEN_ENCRYPTION_KEY: 'K3YVALUE' }), env: {} }))!;
    expect(found).toEqual([
      `config file ${FILE}: key "schwabAppSecret" is a secret, which comes from env SCHWAB_APP_SECRET only (never from a file)`,
      `config file ${FILE}: key "TOKEN_ENCRYPTION_KEY" is a secret, which comes from env TOKEN_ENCRYPTION_KEY only (never from a file)`,
    ]);
  });

  it('reads a file with a BOM, and names a missing file or a directory', () => {
    expect(loadConfig({ file: writeConfig(`\uFEFF{"chainId": 7}`), env: {} }).chainId).toBe(7);
    const dir = join(DIR, 'a-directory');
    mkdirSync(dir, { recursive: true });
    expect(problemsOf(() => loadConfig({ file: dir, env: {} }))).toEqual([`config file ${dir}: EISDIR: illegal operation on a directory, read`]);
    const missing = join(DIR, 'missing.json');
    expect(problemsOf(() => loadConfig({ file: missing, env: {} }))).toEqual([expect.stringMatching(new RegExp(`^config file ${escape(missing)}: ENOENT`))]);
    expect(problemsOf(() => loadConfig({ env: { LEDGER_CONFIG: missing } }))).toEqual([expect.stringMatching(new RegExp(`^config file ${escape(missing)}: ENOENT`))]);
  });
});

describe('the binary', () => {
  it('exits 2 with the problems on stderr, naming the setting, never a secret', async () => {
    const missing = join(DIR, 'missing.json');
    const [env, file, flag] = await Promise.all([
      runCli(['positions'], { env: { LEDGER_CHAIN_ID: '0x2105', SCHWAB_APP_SECRET: 'APPSECRET123', TOKEN_ENCRYPTION_KEY: 'TOKENKEY4567' } }),
      runCli(['positions', '--config', missing]),
      runCli(['positions', '--store', 'esdb://admin:PASSWORD789@db:99999']),
    ]);
    expect(env).toMatchObject({ code: 2, stdout: '' });
    expect(env.stderr).toMatch(/^hedge-ledger positions: bad configuration:\n {2}env LEDGER_CHAIN_ID → chainId: expected a positive integer, got "0x2105" \([^\n]*\)\n$/);
    expect(file).toMatchObject({ code: 2, stdout: '' });
    expect(file.stderr).toMatch(new RegExp(`^hedge-ledger positions: bad configuration:\\n {2}config file ${escape(missing)}: ENOENT[^\\n]*\\n$`));
    expect(flag).toMatchObject({ code: 2, stdout: '' });
    expect(flag.stderr).toMatch(/^hedge-ledger positions: bad configuration:\n {2}--store: port 99999 is out of range, got "esdb:\/\/\*\*\*@db:99999"[^\n]*\n$/);
    expect(`${env.stderr}${file.stderr}${flag.stderr}`).not.toMatch(/APPSECRET|TOKENKEY|PASSWORD|admin/);
  });
});

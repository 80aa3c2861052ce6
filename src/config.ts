/**
 * Configuration: a JSON file (`--config`, LEDGER_CONFIG) and the environment, environment
 * winning. Both are decoded with io-ts; every bad value is reported with its key and reason.
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import { Address, IsoTime, NonNegativeInt, PositiveInt, Ticker, describeErrors, strictRecord } from './domain/codecs.ts';
import { locateStore, redactStoreUrl } from './eventstore/store-location.ts';
import { readTextFile, repeatedKeyPaths } from './text-file.ts';

export const DEFAULT_STORE = 'sqlite:./data/ledger.db';

/** Node's timers take at most 2^31-1 ms (~24.8 days): a longer one fires after 1 ms, a loop polling flat out. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const millis = (min: number) => t.refinement(t.number, (n) => Number.isSafeInteger(n) && n >= min && n <= MAX_TIMER_MS, `a whole number of milliseconds from ${min} to ${MAX_TIMER_MS}`);
const Millis = millis(0);
const PositiveMillis = millis(1);
const BrokerKind = t.keyof({ paper: null, schwab: null });
/** One `new URL()` parses too (a port in range, no space in the host…): fetch refuses any other at every retry, and quotes it, API key and all. */
const RpcUrl = t.refinement(t.string, (s) => /^(https?|wss?):\/\/[^\s/?#]+/.test(s) && URL.canParse(s), 'an http(s) or ws(s) URL');
/** Far past finality (about 600 blocks on Base, under 100 on Ethereum): a deeper depth is a typo that would leave the ledger blind for hours. */
const MAX_CONFIRMATIONS = 10_000;
/** A block count behind the latest block, or a head tag the node maintains. */
const isConfirmations = (u: unknown): u is number | 'safe' | 'finalized' => (NonNegativeInt.is(u) && u <= MAX_CONFIRMATIONS) || u === 'safe' || u === 'finalized';
const Confirmations = new t.Type<number | 'safe' | 'finalized', unknown, unknown>(`a block count up to ${MAX_CONFIRMATIONS}, "safe" or "finalized"`, isConfirmations, (u, c) => (isConfirmations(u) ? t.success(u) : t.failure(u, c)), t.identity);
/** One a URL parser takes too: a callback on port 99999 would only fail in the browser, after the login. */
const HttpUrl = t.refinement(t.string, (s) => /^https?:\/\/[^\s/]+(\/\S*)?$/.test(s) && URL.canParse(s), 'an http(s) URL');
/** fetch refuses a URL with a user:password at every call, and quotes it, password and all. */
const SchwabBaseUrl = t.refinement(t.string, (s) => HttpUrl.is(s) && new URL(s).username === '' && new URL(s).password === '', 'an http(s) URL without user:password');
/** A URL that names a store; a bad one is quoted without its user:password. */
const StoreUrl = new t.Type<string, string, unknown>('a store URL', t.string.is, (u, c) => {
  if (typeof u !== 'string') return t.failure(u, c);
  const location = locateStore(u);
  return E.isRight(location) ? t.success(u) : t.failure(u, c, `${location.left}, got ${JSON.stringify(redactStoreUrl(u))}`);
}, t.identity);
/** At least one: an empty list (`LEDGER_OWNERS=","`) would silently replace the file's owners with none. */
const Owners = t.refinement(t.array(Address), (owners) => owners.length > 0, 'at least one owner address');
/** The instant a backup was taken, in UTC (a zone would be one more way to be hours off); a day past the month's end is a typo, not March. */
const ReconcileSince = t.refinement(IsoTime, (s) => Number.isFinite(Date.parse(s)) && new Date(s).toISOString().slice(0, 19) === s.slice(0, 19), 'an ISO-8601 UTC time like 2026-11-28T21:00:00Z');
/** The executor lock's heartbeat is a sixth of it: shorter would renew the file more often than a busy disk answers. */
const StaleAge = millis(1000);
/** Not empty, no whitespace around it. */
const trimmedText = (s: string): boolean => s !== '' && s.trim() === s;
/** node:http binds every interface for an empty host: a blank one must not silently expose the API that defaults to 127.0.0.1. */
const HttpHost = t.refinement(t.string, trimmedText, 'a host name or IP address without surrounding whitespace');
/** An app key, account number or path: an empty one would be sent to Schwab (or opened) as given, a trailing space or newline too, failing only at login or order time. */
const Text = t.refinement(t.string, trimmedText, 'text, not empty, without surrounding whitespace');
const Port = t.refinement(t.number, (n) => Number.isSafeInteger(n) && n >= 0 && n <= 65535, 'a port from 0 to 65535');

/** One setting (its file key is its key in `settings`): env name, codec for the decoded value, how env text becomes JSON, and what it means. */
interface Setting<A> {
  readonly env: string;
  readonly codec: t.Type<A, unknown, unknown>;
  readonly fromEnv: (text: string) => unknown;
  readonly describe: string;
}

const text = (s: string): unknown => s;
/** Past 2^53 a number is rounded: such text stays text, so a refusal quotes what was given. */
const integer = (s: string): unknown => (/^-?\d+$/.test(s.trim()) && Number.isSafeInteger(Number(s.trim())) ? Number(s.trim()) : s);
const list = (s: string): string[] => s.split(',').map((x) => x.trim()).filter((x) => x !== '');
/**
 * `SPLG=SPYM,BRKB=BRK.B` → { SPLG: "SPYM", … }; a pair without `=` decodes to an empty target and is
 * reported. A pair with two `=` or a key given twice stays text, so the refusal quotes it (one meaning or none).
 */
function pairs(s: string): unknown {
  const split = list(s).map((p) => p.split('=').map((x) => x.trim()));
  const keys = split.map(([key]) => key);
  if (split.some((p) => p.length > 2) || new Set(keys).size < keys.length) return s;
  return Object.fromEntries(split.map(([key, value]) => [key, value ?? '']));
}

const setting = <A>(env: string, codec: t.Type<A, unknown, unknown>, fromEnv: (s: string) => unknown, describe: string): Setting<A> =>
  ({ env, codec, fromEnv, describe });

export const settings = {
  store: setting('LEDGER_STORE', StoreUrl, text, `event store URL (sqlite:<path>, sqlite::memory:, esdb://host:2113?tls=false); default ${DEFAULT_STORE}`),
  chainId: setting('LEDGER_CHAIN_ID', PositiveInt, integer, 'EVM chain id; default 8453 (Base)'),
  orderbook: setting('LEDGER_ORDERBOOK', Address, text, 'orderbook contract address'),
  owners: setting('LEDGER_OWNERS', Owners, list, 'our order owners, at least one (comma-separated in env)'),
  rpcUrl: setting('LEDGER_RPC_URL', RpcUrl, text, 'JSON-RPC endpoint, http(s) or ws(s)'),
  rpcUrls: setting('LEDGER_RPC_URLS', t.array(RpcUrl), list, 'fallback JSON-RPC endpoints after rpcUrl, in order (comma-separated in env)'),
  deploymentBlock: setting('LEDGER_DEPLOYMENT_BLOCK', NonNegativeInt, integer, 'first block to ingest; default 0'),
  confirmations: setting('LEDGER_CONFIRMATIONS', Confirmations, integer, 'blocks behind the latest before a log is ingested (at most 10000), or "safe"/"finalized"; default 10 (20 s on Base)'),
  chainPollIntervalMs: setting('LEDGER_CHAIN_POLL_INTERVAL_MS', PositiveMillis, integer, 'how often the ingester asks the node for a new head; default 1000'),
  rpcConcurrency: setting('LEDGER_RPC_CONCURRENCY', PositiveInt, integer, 'eth_getLogs calls in flight during a backfill; default 4'),
  maxBlockRange: setting('LEDGER_MAX_BLOCK_RANGE', PositiveInt, integer, 'most blocks per eth_getLogs call (the range adapts below it); default 10000'),
  rpcDeadlineMs: setting('LEDGER_RPC_DEADLINE_MS', PositiveMillis, integer, 'how long one RPC call may keep failing or waiting, retried with backoff, before ingestion stops; default 120000'),
  maxConsecutiveFailures: setting('LEDGER_MAX_CONSECUTIVE_FAILURES', PositiveInt, integer, 'broker failures in a row before a symbol halts; default 3'),
  brokerSymbols: setting('LEDGER_BROKER_SYMBOLS', strictRecord(Ticker, Ticker), pairs, 'base ticker → broker symbol (env: SPLG=SPYM,…)'),
  broker: setting('LEDGER_BROKER', BrokerKind, text, 'paper or schwab; default paper'),
  logLevel: setting('LEDGER_LOG_LEVEL', t.keyof({ trace: null, debug: null, info: null, warn: null, error: null, fatal: null, silent: null }), text, 'pino log level; default info'),
  // ---- execution (executor, paper broker, Schwab) ----
  pollIntervalMs: setting('LEDGER_POLL_INTERVAL_MS', PositiveMillis, integer, 'how often the executor asks the broker about each open order (±20% jitter); default 2000'),
  openOrderDeadlineMs: setting('LEDGER_OPEN_ORDER_DEADLINE_MS', PositiveMillis, integer, 'an order still open after this much regular-hours time is cancelled and reported; default 900000 (15 min)'),
  placementSettleMs: setting('LEDGER_PLACEMENT_SETTLE_MS', Millis, integer, 'after an answer that leaves unclear whether an order was placed (or a restart mid-placement), how long the orders list gets to show it before the order is placed again; default 10000'),
  reconcileSkewMs: setting('LEDGER_RECONCILE_SKEW_MS', Millis, integer, 'reconciliation adopts broker orders entered up to this long before the intent was recorded (rounded down to the whole second); default 60000'),
  reconcileSince: setting('LEDGER_RECONCILE_SINCE', ReconcileSince, text, 'after restoring a backup: every command without a recorded order first adopts a matching broker order entered since this UTC time (when the backup was taken), if there is one; remove it once the restored ledger has caught up; default unset'),
  executorLockStaleMs: setting('LEDGER_EXECUTOR_LOCK_STALE_MS', StaleAge, integer, 'with a SQLite file store: an executor lock (<db file>.executor.lock) not renewed for this long is taken over (or for the stale age its holder runs with, if longer), and a live one is waited for as long before the executor refuses to start; renewed every sixth of it; default 30000'),
  paperFillDelayMs: setting('LEDGER_PAPER_FILL_DELAY_MS', Millis, integer, 'the paper broker fills this long after the intent; default 0'),
  schwabBaseUrl: setting('SCHWAB_BASE_URL', SchwabBaseUrl, text, 'Schwab API base URL; default https://api.schwabapi.com (the simulator: http://127.0.0.1:<port>)'),
  schwabAppKey: setting('SCHWAB_APP_KEY', Text, text, 'app key (client id) of your Schwab developer app'),
  schwabCallbackUrl: setting('SCHWAB_CALLBACK_URL', HttpUrl, text, "your app's registered callback URL, exactly; default https://127.0.0.1"),
  schwabTokenFile: setting('SCHWAB_TOKEN_FILE', Text, text, 'the encrypted Schwab token file (key in env TOKEN_ENCRYPTION_KEY); default ./data/schwab-tokens.json'),
  schwabAccountNumber: setting('SCHWAB_ACCOUNT_NUMBER', Text, text, 'Schwab account to hedge in; needed only when the login sees several'),
  schwabRequestTimeoutMs: setting('SCHWAB_REQUEST_TIMEOUT_MS', PositiveMillis, integer, 'timeout of one Schwab request; default 10000'),
  // ---- HTTP API ----
  httpHost: setting('LEDGER_HTTP_HOST', HttpHost, text, 'address the read-only HTTP API binds; default 127.0.0.1 (0.0.0.0 or :: exposes it)'),
  httpPort: setting('LEDGER_HTTP_PORT', Port, integer, 'HTTP API port; default 8080, 0 picks a free one'),
  maxIngestLagBlocks: setting('LEDGER_MAX_INGEST_LAG_BLOCKS', PositiveInt, integer, 'the service is not ready while ingestion is further than this behind the confirmed chain head; default 50'),
  ingestStallMs: setting('LEDGER_INGEST_STALL_MS', PositiveMillis, integer, 'the watchdog restarts the ingester after this long without progress while the chain is ahead of it; default 300000 (5 min)'),
  shutdownTimeoutMs: setting('LEDGER_SHUTDOWN_TIMEOUT_MS', PositiveMillis, integer, 'how long a SIGINT/SIGTERM waits for the roles to stop before exiting anyway; default 15000'),
  httpRetention: setting('LEDGER_HTTP_RETENTION', PositiveInt, integer, 'most recent trades and rejections (each) the HTTP API keeps in memory; default 10000 (the CLI lists them all)'),
} as const;

type Settings = typeof settings;
export type Config = { readonly [K in keyof Settings]?: t.TypeOf<Settings[K]['codec']> };

const EXECUTION_DEFAULTS = {
  pollIntervalMs: 2000,
  openOrderDeadlineMs: 900_000,
  placementSettleMs: 10_000,
  reconcileSkewMs: 60_000,
  executorLockStaleMs: 30_000,
  paperFillDelayMs: 0,
  schwabBaseUrl: 'https://api.schwabapi.com',
  schwabCallbackUrl: 'https://127.0.0.1',
  schwabTokenFile: './data/schwab-tokens.json',
  schwabRequestTimeoutMs: 10_000,
} as const;
const CHAIN_DEFAULTS = {
  confirmations: 10 as t.TypeOf<typeof Confirmations>,
  chainPollIntervalMs: 1000,
  rpcConcurrency: 4,
  maxBlockRange: 10_000,
  rpcDeadlineMs: 120_000,
} as const;
const HTTP_DEFAULTS = { httpHost: '127.0.0.1', httpPort: 8080, httpRetention: 10_000 } as const;
const SERVICE_DEFAULTS = { maxIngestLagBlocks: 50, ingestStallMs: 300_000, shutdownTimeoutMs: 15_000 } as const;
const DEFAULTS = { store: DEFAULT_STORE, chainId: 8453, deploymentBlock: 0, maxConsecutiveFailures: 3, brokerSymbols: {}, broker: 'paper', logLevel: 'info', ...CHAIN_DEFAULTS, ...EXECUTION_DEFAULTS, ...HTTP_DEFAULTS, ...SERVICE_DEFAULTS } as const;
type Defaulted = keyof typeof DEFAULTS;
/** Settings with a default are always present, with their codec's type (not the default's literal). */
export type ResolvedConfig = Omit<Config, Defaulted> & { readonly [K in Defaulted]-?: NonNullable<Config[K]> };

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`bad configuration:\n  ${problems.join('\n  ')}`);
  }
}

const keys = Object.keys(settings) as (keyof Settings)[];

/**
 * URLs may carry credentials: RPC URLs an API key in their path or query, store and Schwab URLs a
 * user:password. A bad one is never quoted as given (the store's codec quotes it redacted).
 */
const UNQUOTED: ReadonlySet<keyof Settings> = new Set(['rpcUrl', 'rpcUrls', 'store', 'schwabBaseUrl']);

/** `label` names where the value came from: `config file key store`, `env LEDGER_STORE → store`, `--store`. */
function decodeSetting(key: keyof Settings, raw: unknown, label: string): E.Either<string, unknown> {
  const result = (settings[key].codec as t.Type<unknown, unknown, unknown>).decode(raw);
  if (E.isRight(result)) return result;
  const { path, reason } = describeErrors(result.left, { showValue: !UNQUOTED.has(key) });
  return E.left(`${label}${path ? `.${path}` : ''}: ${reason} (${settings[key].describe})`);
}

/**
 * JSON.parse's reason without the text it quotes around an unexpected token (`…"1KEY", https://o"…`,
 * or a short file whole): the file holds RPC URLs and store URLs, API keys and passwords with them.
 */
const unquotedSyntaxError = (e: SyntaxError): string => e.message.replace(/, (\.\.\.)?".*"(\.\.\.)? is not valid JSON$/s, ' (not valid JSON)');

function readFile(path: string): { values: Record<string, unknown>; problems: string[] } {
  let parsed: unknown;
  let text = '';
  try {
    text = readTextFile(path);
    parsed = JSON.parse(text);
  } catch (e) {
    return { values: {}, problems: [`config file ${path}: ${e instanceof SyntaxError ? unquotedSyntaxError(e) : (e as Error).message}`] };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { values: {}, problems: [`config file ${path}: expected a JSON object`] };
  const unknown = Object.keys(parsed).filter((k) => !keys.includes(k as keyof Settings));
  const repeated = repeatedKeyPaths(text);
  return {
    values: parsed as Record<string, unknown>,
    problems: [
      ...unknown.map((k) => {
        const secret = Object.entries(secrets).find(([name, { env }]) => k === name || k === env)?.[1];
        return secret === undefined
          ? `config file ${path}: unknown key ${JSON.stringify(k)} (known: ${keys.join(', ')})`
          : `config file ${path}: key ${JSON.stringify(k)} is a secret, which comes from env ${secret.env} only (never from a file)`;
      }),
      ...repeated.map((k) => `config file ${path}: key ${JSON.stringify(k)} given twice (JSON would keep the last; give it once)`),
    ],
  };
}

type Decoded = E.Either<string, unknown>;

/** A decoded value as text to compare, a record's keys in order: `SPLG=SPYM,BRKB=BRK.B` is the file's `{"BRKB":…,"SPLG":…}`. */
const comparable = (value: unknown): string =>
  JSON.stringify(value, (_, v: unknown) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v));

/** Both decoded, to different values: the environment's wins, and an operator may not know it is set (the container image sets several). */
const replaced = (file: Decoded | undefined, env: Decoded | undefined): boolean =>
  file !== undefined && env !== undefined && E.isRight(file) && E.isRight(env) && comparable(file.right) !== comparable(env.right);

/**
 * Decodes file and environment into one config; `overrides` (command-line flags, decoded
 * like them and named `--<key>`) win over both. Throws ConfigError listing every problem at once.
 */
export function loadConfig(options: { file?: string | undefined; env?: NodeJS.ProcessEnv; overrides?: Config; onReplaced?: (key: keyof Settings) => void } = {}): ResolvedConfig {
  const env = options.env ?? process.env;
  const file = options.file ?? env['LEDGER_CONFIG'];
  const fromFile = file ? readFile(file) : { values: {}, problems: [] };
  const problems = [...fromFile.problems];
  const config: Record<string, unknown> = { ...DEFAULTS };
  for (const key of keys) {
    const envText = env[settings[key].env];
    const override = options.overrides?.[key];
    const fileValue = key in fromFile.values ? decodeSetting(key, fromFile.values[key], `config file key ${key}`) : undefined;
    const envValue = envText !== undefined && envText !== '' ? decodeSetting(key, settings[key].fromEnv(envText), `env ${settings[key].env} → ${key}`) : undefined;
    const flagValue = override === undefined ? undefined : decodeSetting(key, override, `--${key}`);
    for (const decoded of [fileValue, envValue, flagValue]) {
      if (decoded === undefined) continue;
      if (E.isLeft(decoded)) problems.push(decoded.left);
      else config[key] = decoded.right;
    }
    if (flagValue === undefined && replaced(fileValue, envValue)) options.onReplaced?.(key);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config as ResolvedConfig;
}

/** Several checks' problems, reported at once: being told of one missing setting per try is a slow way to learn them all. */
export class ConfigProblems {
  readonly #problems = new Set<string>();

  /** `check`'s result, or undefined when it threw a ConfigError, whose problems are kept. */
  check<T>(check: () => T): T | undefined {
    try {
      return check();
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      for (const problem of e.problems) this.#problems.add(problem);
      return undefined;
    }
  }

  /** Throws a ConfigError with every problem kept, if there is one. */
  throwIfAny(): void {
    if (this.#problems.size > 0) throw new ConfigError([...this.#problems]);
  }
}

/** Settings a command cannot run without, checked where the command starts. */
export function requireSettings<K extends keyof Settings>(config: ResolvedConfig, required: readonly K[], command: string): void {
  const missing = required.filter((k) => config[k] === undefined);
  if (missing.length > 0) {
    throw new ConfigError(missing.map((k) => `${command} needs ${k} (env ${settings[k].env} or config file key "${k}"): ${settings[k].describe}`));
  }
}

/** Secrets come from the environment only: never from a config file, never into a log line. */
export const secrets = {
  schwabAppSecret: { env: 'SCHWAB_APP_SECRET', describe: 'app secret of your Schwab developer app' },
  tokenEncryptionKey: { env: 'TOKEN_ENCRYPTION_KEY', describe: '32 random bytes, as 64 hex digits or base64 (not a passphrase), that encrypt the Schwab tokens at rest (generate one: openssl rand -base64 32)' },
} as const;

/** Variables read besides the settings and secrets; `LEDGER_TEST_*` are the test suite's own. */
const OTHER_ENV: ReadonlySet<string> = new Set(['LEDGER_CONFIG', 'LEDGER_DEBUG']);

/** Edit distance, for the name a mistyped variable was meant to be. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/**
 * `LEDGER_*` and `SCHWAB_*` variables that nothing reads (`LEDGER_HTPP_PORT`): a typo that would
 * otherwise leave the default in place without a word. Each with the known name nearest to it, if one is near.
 */
export function unknownEnvNames(env: NodeJS.ProcessEnv = process.env): { readonly name: string; readonly meant?: string }[] {
  const known = [...keys.map((k) => settings[k].env), ...Object.values(secrets).map((s) => s.env), ...OTHER_ENV];
  return Object.keys(env)
    .filter((name) => /^(LEDGER|SCHWAB)_/.test(name) && !name.startsWith('LEDGER_TEST_') && !known.includes(name))
    .sort()
    .map((name) => {
      const [nearest] = known.map((k) => ({ k, d: distance(name, k) })).sort((a, b) => a.d - b.d);
      return nearest !== undefined && nearest.d <= 3 ? { name, meant: nearest.k } : { name };
    });
}

export function readSecret(name: keyof typeof secrets, command: string, env: NodeJS.ProcessEnv = process.env): string {
  const { env: variable, describe } = secrets[name];
  const value = env[variable]?.trim();
  if (value === undefined || value === '') throw new ConfigError([`${command} needs env ${variable}: ${describe}`]);
  return value;
}

/**
 * Configuration: a JSON file (`--config`, LEDGER_CONFIG) and the environment, environment
 * winning. Both are decoded with io-ts; every bad value is reported with its key and reason.
 */
import { readFileSync } from 'node:fs';
import * as t from 'io-ts';
import * as E from 'fp-ts/lib/Either.js';
import { Address, describeErrors } from './domain/codecs.ts';

export const DEFAULT_STORE = 'sqlite:./data/ledger.db';

const PositiveInt = t.refinement(t.number, (n) => Number.isSafeInteger(n) && n > 0, 'a positive integer');
const NonNegativeInt = t.refinement(t.number, (n) => Number.isSafeInteger(n) && n >= 0, 'a non-negative integer');
const Ticker = t.refinement(t.string, (s) => /^[A-Z][A-Z0-9.]*$/.test(s), 'an uppercase ticker');
const BrokerKind = t.keyof({ paper: null, schwab: null });

/** One setting: its file key, env name, codec for the decoded value, and how env text becomes JSON. */
interface Setting<A> {
  readonly env: string;
  readonly codec: t.Type<A, unknown, unknown>;
  readonly fromEnv: (text: string) => unknown;
  readonly describe: string;
}

const text = (s: string): unknown => s;
const integer = (s: string): unknown => (/^-?\d+$/.test(s.trim()) ? Number(s.trim()) : s);
const list = (s: string): string[] => s.split(',').map((x) => x.trim()).filter((x) => x !== '');
/** `SPLG=SPYM,BRK.B=BRK/B` → { SPLG: "SPYM", … }; a pair without `=` decodes to an empty target and is reported. */
const pairs = (s: string): unknown => Object.fromEntries(list(s).map((p) => [p.split('=')[0]?.trim() ?? '', p.split('=')[1]?.trim() ?? '']));

const setting = <A>(env: string, codec: t.Type<A, unknown, unknown>, fromEnv: (s: string) => unknown, describe: string): Setting<A> =>
  ({ env, codec, fromEnv, describe });

export const settings = {
  store: setting('LEDGER_STORE', t.string, text, `event store URL (sqlite:<path>, sqlite::memory:, esdb://host:2113?tls=false); default ${DEFAULT_STORE}`),
  chainId: setting('LEDGER_CHAIN_ID', PositiveInt, integer, 'EVM chain id; default 8453 (Base)'),
  orderbook: setting('LEDGER_ORDERBOOK', Address, text, 'orderbook contract address'),
  owners: setting('LEDGER_OWNERS', t.array(Address), list, 'our order owners (comma-separated in env)'),
  rpcUrl: setting('LEDGER_RPC_URL', t.string, text, 'JSON-RPC endpoint, http(s) or ws(s)'),
  deploymentBlock: setting('LEDGER_DEPLOYMENT_BLOCK', NonNegativeInt, integer, 'first block to ingest; default 0'),
  maxConsecutiveFailures: setting('LEDGER_MAX_CONSECUTIVE_FAILURES', PositiveInt, integer, 'broker failures in a row before a symbol halts; default 3'),
  brokerSymbols: setting('LEDGER_BROKER_SYMBOLS', t.record(Ticker, Ticker), pairs, 'base ticker → broker symbol (env: SPLG=SPYM,…)'),
  broker: setting('LEDGER_BROKER', BrokerKind, text, 'paper or schwab; default paper'),
  logLevel: setting('LEDGER_LOG_LEVEL', t.keyof({ trace: null, debug: null, info: null, warn: null, error: null, fatal: null, silent: null }), text, 'pino log level; default info'),
} as const;

type Settings = typeof settings;
export type Config = { readonly [K in keyof Settings]?: t.TypeOf<Settings[K]['codec']> };

const DEFAULTS = { store: DEFAULT_STORE, chainId: 8453, deploymentBlock: 0, maxConsecutiveFailures: 3, brokerSymbols: {}, broker: 'paper', logLevel: 'info' } as const;
export type ResolvedConfig = Config & typeof DEFAULTS extends infer R ? { readonly [K in keyof R]: R[K] } : never;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`bad configuration:\n  ${problems.join('\n  ')}`);
  }
}

const keys = Object.keys(settings) as (keyof Settings)[];

function decodeSetting(key: keyof Settings, raw: unknown, source: string): E.Either<string, unknown> {
  const result = (settings[key].codec as t.Type<unknown, unknown, unknown>).decode(raw);
  if (E.isRight(result)) return result;
  const { path, reason } = describeErrors(result.left);
  return E.left(`${source} ${key}${path ? `.${path}` : ''}: ${reason} (${settings[key].describe})`);
}

function readFile(path: string): { values: Record<string, unknown>; problems: string[] } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    return { values: {}, problems: [`config file ${path}: ${(e as Error).message}`] };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { values: {}, problems: [`config file ${path}: expected a JSON object`] };
  const unknown = Object.keys(parsed).filter((k) => !keys.includes(k as keyof Settings));
  return { values: parsed as Record<string, unknown>, problems: unknown.map((k) => `config file ${path}: unknown key ${JSON.stringify(k)} (known: ${keys.join(', ')})`) };
}

/**
 * Decodes file and environment into one config; `overrides` (command-line flags) win over both.
 * Throws ConfigError listing every problem at once.
 */
export function loadConfig(options: { file?: string | undefined; env?: NodeJS.ProcessEnv; overrides?: Config } = {}): ResolvedConfig {
  const env = options.env ?? process.env;
  const file = options.file ?? env['LEDGER_CONFIG'];
  const fromFile = file ? readFile(file) : { values: {}, problems: [] };
  const problems = [...fromFile.problems];
  const config: Record<string, unknown> = { ...DEFAULTS };
  for (const key of keys) {
    const envText = env[settings[key].env];
    const candidates: [unknown, string][] = [];
    if (key in fromFile.values) candidates.push([fromFile.values[key], `config file key`]);
    if (envText !== undefined && envText !== '') candidates.push([settings[key].fromEnv(envText), `env ${settings[key].env} →`]);
    for (const [raw, source] of candidates) {
      const decoded = decodeSetting(key, raw, source);
      if (E.isLeft(decoded)) problems.push(decoded.left);
      else config[key] = decoded.right;
    }
    const override = options.overrides?.[key];
    if (override !== undefined) config[key] = override;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config as ResolvedConfig;
}

/** Settings a command cannot run without, checked where the command starts. */
export function requireSettings<K extends keyof Settings>(config: ResolvedConfig, required: readonly K[], command: string): void {
  const missing = required.filter((k) => config[k] === undefined);
  if (missing.length > 0) {
    throw new ConfigError(missing.map((k) => `${command} needs ${k} (env ${settings[k].env} or config file key "${k}"): ${settings[k].describe}`));
  }
}

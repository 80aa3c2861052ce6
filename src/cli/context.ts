/** What every command needs: arguments, decoded config, the fold's settings. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig, requireSettings, settings, unknownEnvNames, type ResolvedConfig } from '../config.ts';
import type { AccumulatorConfig } from '../../projections/accumulator.ts';
import { settingsChanged } from '../../projections/accumulator-snapshot.ts';
import { logger, rootLogger } from '../log.ts';
import { withStore } from '../eventstore/url.ts';
import type { EventStore } from '../eventstore/port.ts';
import { ACCUMULATOR_CHECKPOINT } from '../services/accumulator.ts';

const commonOptions = {
  store: { type: 'string' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsConfig['options'];

/** `--json`, for the commands that print JSON: declared by each of them, so the others refuse it. */
export const jsonOption = { json: { type: 'boolean', default: false } } as const satisfies ParseArgsConfig['options'];

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** An argument as a refusal quotes it; a URL only by its scheme: it may hold a password (a store URL) or an API key (an RPC URL). */
export function quoted(argument: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(argument)?.[1];
  return scheme === undefined ? JSON.stringify(argument) : `(a URL: ${scheme}://…)`;
}

/**
 * parseArgs' refusal, but a mistyped option (`--jsn`) named with the options the command takes: its own
 * message suggests passing it as a positional argument after `--`, which no command here takes.
 */
function argumentProblem(error: Error & { code?: string }, taken: readonly string[]): string {
  if (error.code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return error.message;
  const option = /^Unknown option '([^']*)'/.exec(error.message)?.[1];
  const name = option === undefined ? 'an unknown option' : `unknown option ${quoted(option)}`;
  return `${name}: this command takes ${taken.map((o) => `--${o}`).join(', ')}`;
}

/**
 * `positionals` names the arguments the command takes, in order (`<logs.jsonl>`). Any more is
 * refused, not ignored: a stray word is often a mistyped flag (`run once`) or a second file.
 */
export function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O, positionals: readonly string[] = []) {
  let parsed;
  const taken = { ...commonOptions, ...options };
  try {
    parsed = parseArgs({ args: argv, options: taken, allowPositionals: true, strict: true, tokens: true });
  } catch (e) {
    throw new UsageError(argumentProblem(e as Error & { code?: string }, [...new Set([...Object.keys(options), ...Object.keys(commonOptions)])]));
  }
  const given = parsed.tokens.flatMap((token) => (token.kind === 'option' ? [token.name] : []));
  const twice = given.find((name, i) => given.indexOf(name) !== i);
  // The last would win, silently: `--store a --store b` is a slip (a pasted line), not a choice.
  if (twice !== undefined) throw new UsageError(`--${twice} is given twice: give it once`);
  const extra = parsed.positionals[positionals.length];
  if (extra !== undefined) {
    throw new UsageError(`unexpected argument ${quoted(extra)}: this command takes ${positionals.length === 0 ? 'options only' : `${positionals.join(' ')} and options`}`);
  }
  return parsed;
}

/** The options every command takes that name where its configuration and store are. */
export type CommonValues = { readonly store?: string | undefined; readonly config?: string | undefined };

export function configFrom(values: CommonValues): ResolvedConfig {
  // An empty path (an unset shell variable) would read no file, and not LEDGER_CONFIG either.
  if (values.config === '') throw new UsageError('--config takes the path of a JSON file, got an empty one');
  const replaced: (keyof typeof settings)[] = [];
  const config = loadConfig({ file: values.config, overrides: values.store === undefined ? {} : { store: values.store }, onReplaced: (key) => replaced.push(key) });
  rootLogger(config.logLevel);
  // Values unquoted: a store URL may hold a password.
  for (const key of replaced) logger('config').warn({ env: settings[key].env, key }, `env ${settings[key].env} replaces config file key ${key} (the environment wins)`);
  for (const { name, meant } of unknownEnvNames()) {
    logger('config').warn({ env: name, ...(meant ? { meant } : {}) }, `env ${name} is no setting and is ignored${meant ? ` (did you mean ${meant}?)` : ''}`);
  }
  return config;
}

export function accumulatorConfig(config: ResolvedConfig, command: string): AccumulatorConfig {
  requireSettings(config, ['orderbook', 'owners'], command);
  return {
    fills: { chainId: config.chainId, orderbook: config.orderbook!, owners: new Set(config.owners!) },
    maxConsecutiveFailures: config.maxConsecutiveFailures,
    brokerSymbols: config.brokerSymbols,
  };
}

/**
 * Runs `body` on the ledger for a command that folds it. The configuration is checked before the
 * store opens (a bad one creates no store file), and the store must exist (a missing SQLite file is
 * a mistyped path, not an empty ledger to answer from). It warns first when the accumulator last
 * checkpointed the ledger under other settings: the answers then follow the settings given, and
 * may show hedges that were never issued.
 */
export function withLedger<T>(values: CommonValues, command: string, body: (store: EventStore, fold: AccumulatorConfig) => Promise<T>): Promise<T> {
  const config = configFrom(values);
  const fold = accumulatorConfig(config, command);
  return withStore(config.store, async (store) => {
    const checkpoint = await store.readCheckpoint(ACCUMULATOR_CHECKPOINT);
    const changed = checkpoint?.snapshot === undefined ? [] : settingsChanged(checkpoint.snapshot, fold);
    if (changed.length > 0) {
      const why = `the accumulator folded this ledger under other ${changed.join(', ')} than given here: these answers follow the settings given, and may differ from what was hedged (a new configuration needs a new ledger)`;
      logger(command).warn({ settings: changed }, why);
    }
    return body(store, fold);
  }, { create: false });
}

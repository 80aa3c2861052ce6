/** What every command needs: decoded config, an open store, a logger. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig, requireSettings, type ResolvedConfig } from '../config.ts';
import { openStore } from '../eventstore/url.ts';
import type { EventStore } from '../eventstore/port.ts';
import type { AccumulatorConfig } from '../../projections/accumulator.ts';
import { rootLogger } from '../log.ts';

export const commonOptions = {
  store: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsConfig['options'];

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options: { ...commonOptions, ...options }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export function configFrom(values: { store?: string | undefined; config?: string | undefined }): ResolvedConfig {
  const config = loadConfig({ file: values.config, overrides: values.store === undefined ? {} : { store: values.store } });
  rootLogger(config.logLevel);
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

/** Opens the store, runs `body`, and always closes the store. */
export async function withStore<T>(config: ResolvedConfig, body: (store: EventStore) => Promise<T>): Promise<T> {
  const store = await openStore(config.store);
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}

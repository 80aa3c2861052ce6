/** Store URLs (`--store`, LEDGER_STORE; their forms in store-location.ts) -> an EventStore. */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { StoreConfigError } from './errors.ts';
import type { EventStore } from './port.ts';
import { SqliteEventStore } from './sqlite.ts';
import { MEMORY, parseStoreUrl } from './store-location.ts';

function ensureDirectory(file: string): void {
  const dir = dirname(resolve(file));
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw new StoreConfigError(`cannot create the directory ${dir} for the SQLite store: ${(error as Error).message}`, { cause: error });
  }
}

/** SQLite would only say it cannot open the file, which reads as a directory missing or not writable. */
function assertNotDirectory(file: string): void {
  if (existsSync(file) && statSync(file).isDirectory()) {
    throw new StoreConfigError(`${file} is a directory: a sqlite: store URL names the database file, e.g. sqlite:${join(file, 'ledger.db')}`);
  }
}

export interface OpenOptions {
  /**
   * Whether a missing SQLite file (and its directory) is created; default true. A command that only
   * reads says false: a mistyped path then fails, naming it, instead of answering from a new empty ledger.
   */
  readonly create?: boolean;
}

/** Opens the store a URL names; SQLite files (and their directory) are created when missing, unless told not to. */
export async function openStore(url: string, { create = true }: OpenOptions = {}): Promise<EventStore> {
  const location = parseStoreUrl(url);
  switch (location.kind) {
    case 'sqlite-memory':
      return new SqliteEventStore(MEMORY);
    case 'sqlite':
      assertNotDirectory(location.path);
      if (!create && !existsSync(location.path)) {
        throw new StoreConfigError(`no ledger at ${location.path}: nothing has been stored there (ingest, ingest-file or run first, or check --store / LEDGER_STORE)`);
      }
      ensureDirectory(location.path);
      return new SqliteEventStore(location.path);
    case 'esdb': {
      // Loaded on demand: SQLite users never load the gRPC client.
      const { EsdbEventStore } = await import('./esdb.ts');
      return new EsdbEventStore(location.connectionString);
    }
  }
}

/** Opens the store at `url`, runs `body`, and always closes the store. */
export async function withStore<T>(url: string, body: (store: EventStore) => Promise<T>, options: OpenOptions = {}): Promise<T> {
  const store = await openStore(url, options);
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}

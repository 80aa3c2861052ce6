/** Store URLs (`--store`, LEDGER_STORE; their forms in store-location.ts) -> an EventStore. */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
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

/** Opens the store a URL names; SQLite files (and their directory) are created when missing. */
export async function openStore(url: string): Promise<EventStore> {
  const location = parseStoreUrl(url);
  switch (location.kind) {
    case 'sqlite-memory':
      return new SqliteEventStore(MEMORY);
    case 'sqlite':
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
export async function withStore<T>(url: string, body: (store: EventStore) => Promise<T>): Promise<T> {
  const store = await openStore(url);
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}

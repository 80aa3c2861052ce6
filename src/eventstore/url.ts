/**
 * Store URLs (`--store`, LEDGER_STORE) -> an EventStore.
 *
 *   sqlite:<path>           embedded SQLite file, relative to the working directory or absolute
 *   sqlite:///abs/path.db   the same, file-URL style
 *   sqlite::memory:         private in-memory store (tests)
 *   esdb://… esdb+discover://…   EventStoreDB / KurrentDB, passed to the client unchanged
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { StoreConfigError } from './errors.ts';
import type { EventStore } from './port.ts';
import { MEMORY, SqliteEventStore } from './sqlite.ts';


export type StoreLocation =
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'sqlite-memory' }
  | { readonly kind: 'esdb'; readonly connectionString: string };

const ACCEPTED =
  'sqlite:<path> (e.g. sqlite:./data/ledger.db, sqlite:/var/lib/ledger.db), sqlite::memory:, ' +
  'esdb://host:2113?tls=false or esdb+discover://host1:2113,host2:2113';

const bad = (url: string, why: string): StoreConfigError =>
  new StoreConfigError(`bad store URL ${JSON.stringify(url)}: ${why}. Accepted forms: ${ACCEPTED}`);

function sqlitePath(url: string, rest: string): string {
  if (rest.startsWith('///')) return rest.slice(2);
  if (rest.startsWith('//')) throw bad(url, 'sqlite: takes a path, not a host');
  if (rest === '') throw bad(url, 'the path is missing');
  return rest;
}

export function parseStoreUrl(url: string): StoreLocation {
  const text = url.trim();
  if (text === `sqlite:${MEMORY}`) return { kind: 'sqlite-memory' };
  if (text.startsWith('sqlite:')) return { kind: 'sqlite', path: sqlitePath(url, text.slice('sqlite:'.length)) };
  const esdb = /^esdb(\+discover)?:\/\/(.*)$/.exec(text);
  if (esdb) {
    if (!/^[^/?#\s]+/.test(esdb[2] ?? '')) throw bad(url, 'the host is missing');
    return { kind: 'esdb', connectionString: text };
  }
  throw bad(url, 'unknown kind of store');
}

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

/**
 * Where a store URL (`--store`, LEDGER_STORE) points, checked without opening anything: the
 * configuration's check runs here, and loads no store adapter.
 *
 *   sqlite:<path>           embedded SQLite file, relative to the working directory or absolute
 *   sqlite:///abs/path.db   the same, file-URL style
 *   sqlite::memory:         private in-memory store (tests)
 *   esdb://… esdb+discover://…   EventStoreDB / KurrentDB, passed to the client unchanged
 */
import * as E from 'fp-ts/lib/Either.js';
import { StoreConfigError } from './errors.ts';

/** The file name that opens a private in-memory SQLite store (tests). */
export const MEMORY = ':memory:';

export type StoreLocation =
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'sqlite-memory' }
  | { readonly kind: 'esdb'; readonly connectionString: string };

const ACCEPTED =
  'sqlite:<path> (e.g. sqlite:./data/ledger.db, sqlite:/var/lib/ledger.db), sqlite::memory:, ' +
  'esdb://host:2113?tls=false or esdb+discover://host1:2113,host2:2113';

/**
 * The URL as messages may quote it: everything between the scheme and the last `@` (a
 * user:password, e.g. esdb://admin:changeit@db:2113) becomes `***`. Up to the last `@`, as a
 * password may itself hold an unescaped `@`, `/` or `?`.
 */
export function redactStoreUrl(url: string): string {
  const at = url.lastIndexOf('@');
  if (at < 0) return url;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? '';
  return `${scheme}***${url.slice(at)}`;
}

function sqliteLocation(rest: string): E.Either<string, StoreLocation> {
  if (rest === MEMORY) return E.right({ kind: 'sqlite-memory' });
  if (rest.startsWith('///')) return E.right({ kind: 'sqlite', path: rest.slice(2) });
  if (rest.startsWith('//')) return E.left('sqlite: takes a path, not a host');
  if (rest === '') return E.left('the path is missing');
  return E.right({ kind: 'sqlite', path: rest });
}

/** Where a store URL points, or why it points nowhere (the configuration's check, before any store opens). */
export function locateStore(url: string): E.Either<string, StoreLocation> {
  const text = url.trim();
  if (text.startsWith('sqlite:')) return sqliteLocation(text.slice('sqlite:'.length));
  const esdb = /^esdb(\+discover)?:\/\/(.*)$/.exec(text);
  if (!esdb) return E.left('unknown kind of store');
  return /^[^/?#\s]+/.test(esdb[2] ?? '') ? E.right({ kind: 'esdb', connectionString: text }) : E.left('the host is missing');
}

/** The store a URL names; a bad URL is a StoreConfigError that quotes it redacted. */
export function parseStoreUrl(url: string): StoreLocation {
  const location = locateStore(url);
  if (E.isLeft(location)) throw new StoreConfigError(`bad store URL ${JSON.stringify(redactStoreUrl(url))}: ${location.left}. Accepted forms: ${ACCEPTED}`);
  return location.right;
}

/**
 * Where a store URL (`--store`, LEDGER_STORE) points, checked without opening anything: the
 * configuration's check runs here, and loads no store adapter.
 *
 *   sqlite:<path>           embedded SQLite file, relative to the working directory or absolute
 *   sqlite:///abs/path.db   the same, file-URL style
 *   sqlite::memory:         private in-memory store (tests)
 *   esdb://… esdb+discover://…   EventStoreDB / KurrentDB, passed to the client unchanged
 */
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
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
 * password may itself hold an unescaped `@`, `/` or `?`. So does the value of an option the
 * client does not know (`?password=…`, a credential put in the wrong place).
 */
export function redactStoreUrl(url: string): string {
  const at = url.lastIndexOf('@');
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? '';
  const shown = at < 0 ? url : `${scheme}***${url.slice(at)}`;
  const query = shown.indexOf('?');
  return /^esdb/i.test(scheme) && query >= 0 ? `${shown.slice(0, query)}?${shown.slice(query + 1).split('&').map(redactOption).join('&')}` : shown;
}

const redactOption = (pair: string): string => {
  const eq = pair.indexOf('=');
  return eq < 0 || ESDB_OPTIONS.has(flat(pair.slice(0, eq))) ? pair : `${pair.slice(0, eq)}=***`;
};

function sqliteLocation(rest: string): E.Either<string, StoreLocation> {
  if (rest === MEMORY) return E.right({ kind: 'sqlite-memory' });
  if (rest.startsWith('//') && !rest.startsWith('///')) return E.left('sqlite: takes a path, not a host');
  if (rest === '') return E.left('the path is missing');
  // SQLite drops a trailing "/" and creates the file the directory was meant to be, which then fails
  // every path check (ENOTDIR) and stays behind as a stray ledger.
  if (rest.endsWith('/')) return E.left('the path ends with "/": name the database file, e.g. sqlite:./data/ledger.db');
  return E.right({ kind: 'sqlite', path: rest.startsWith('///') ? rest.slice(2) : rest });
}

type OptionKind = 'integer' | 'positiveInteger' | 'keepAlive' | 'boolean' | 'text' | 'nodePreference';

/** The EventStoreDB client's connection string options, by their flat name (it ignores case, `_` and `-`). */
const ESDB_OPTIONS: ReadonlyMap<string, OptionKind> = new Map(
  Object.entries({
    maxDiscoverAttempts: 'integer', defaultDeadline: 'positiveInteger', discoveryInterval: 'integer', gossipTimeout: 'integer',
    keepAliveInterval: 'keepAlive', keepAliveTimeout: 'keepAlive', tls: 'boolean', tlsVerifyCert: 'boolean',
    throwOnAppendFailure: 'boolean', dnsDiscover: 'boolean', connectionName: 'text', tlsCAFile: 'text',
    userCertFile: 'text', userKeyFile: 'text', nodePreference: 'nodePreference',
  } satisfies Record<string, OptionKind>).map(([key, kind]) => [flat(key), kind]),
);

function flat(key: string): string {
  return key.trim().toLowerCase().replace(/[_-]/g, '');
}

const VALUE_CHECKS: Record<OptionKind, (value: string) => string | undefined> = {
  integer: (v) => (/^\d+$/.test(v.trim()) ? undefined : 'a whole number'),
  // The client refuses 0 when it connects ("Invalid defaultDeadline"), long after the configuration's check.
  positiveInteger: (v) => (/^\d+$/.test(v.trim()) && Number(v) > 0 ? undefined : 'a whole number from 1'),
  // The client's keep-alive takes -1 for off.
  keepAlive: (v) => (/^(\d+|-1)$/.test(v.trim()) ? undefined : 'a whole number, or -1 for off'),
  boolean: (v) => (v.trim() === 'true' || v.trim() === 'false' ? undefined : 'true or false'),
  text: () => undefined,
  // The client also takes follower, read_only_replica and random; but the ingester and the executor read their own
  // streams right after appending (a racer's events, the stream's tail), which a node behind the leader may not have yet.
  nodePreference: (v) => (flat(v) === 'leader' ? undefined : 'leader (the default): hedge-ledger reads its own appends at once, which a follower or replica may not have yet'),
};

/**
 * Why an option the client takes is refused, if it is: the client would print the whole
 * connection string, password included, to stderr for an unknown key or `tlsVerifyCert=false`
 * (which it does not support and ignores), and any other value it refuses would only fail later.
 */
function optionProblem(pair: string): string | undefined {
  const [key = '', value, ...extra] = pair.split('=');
  // Quoted without its value, which may be a credential put in the wrong place.
  if (key.trim() === '' || value === undefined || value.trim() === '' || extra.length > 0 || pair.includes('?')) return `option ${JSON.stringify(value === undefined ? key : `${key}=…`)} is not key=value`;
  const kind = ESDB_OPTIONS.get(flat(key));
  if (kind === undefined) return `unknown option ${JSON.stringify(key)}`;
  // The client folds case, `_` and `-` for every key but this one, which it matches exactly (and else ignores, printing the URL).
  if (flat(key) === 'dnsdiscover' && key !== 'dnsDiscover') return `option ${JSON.stringify(key)} must be spelled dnsDiscover`;
  const expected = VALUE_CHECKS[kind](value);
  if (expected) return `option ${key} must be ${expected}, not ${JSON.stringify(value)}`;
  if (flat(key) === 'tlsverifycert' && value.trim() === 'false') return 'tlsVerifyCert=false is not supported by the EventStoreDB client; trust a private CA with tlsCAFile=<file> instead';
  return undefined;
}

const HOST = /^[^:$+!?*'(),;[\]{}|"%~#<>=&\s]+(?::(\d{1,5}))?$/;

function hostProblem(host: string): string | undefined {
  const port = HOST.exec(host);
  if (!port) return `${JSON.stringify(host)} is not host or host:port`;
  return port[1] !== undefined && Number(port[1]) > 65_535 ? `port ${port[1]} is out of range` : undefined;
}

/** esdb[+discover]://[user:password@]host[:port][,host[:port]…][/][?key=value[&key=value…]], checked as the client will read it. */
function esdbLocation(text: string, rest: string): E.Either<string, StoreLocation> {
  // The user:password first, as the client reads it (up to the first "@" after a ":"), and for good: read
  // as part of a host or an option (a password holding a "?" before a path), it would be quoted in the refusal.
  const credentials = /^[^:@]+:([^@]+)@/.exec(rest);
  const afterCredentials = rest.slice(credentials?.[0].length ?? 0);
  const parts = /^([^/?]*)\/?(?:\?(.*))?$/.exec(afterCredentials);
  if (!parts || parts[1] === '') {
    // `esdb://db:2113/ledger`: a host is there, followed by a path, which the client has no use for.
    return E.left(/^[^/?]+\/[^?]/.test(afterCredentials) ? 'the host is followed by a path (only ?options may follow it)' : 'the host is missing');
  }
  // The client splits user:password at every ':' and keeps the first two parts, so it would log in with less.
  if (credentials?.[1]!.includes(':')) return E.left('the password holds a ":", where the client would cut it short: write it as %3A');
  if (parts[1]!.includes('@')) {
    // Credentials read, only the password can hold a second "@" (a host cannot), and the client would take its rest
    // for the host. None read: a user without ":", or an empty user or password, which no server logs in with.
    return E.left(credentials ? 'the password holds an "@", where the client would take its rest for the host: write it as %40' : 'the credentials must be user:password@, both non-empty');
  }
  const problem =
    parts[1]!.split(',').map(hostProblem).find(Boolean) ??
    (parts[2] === undefined ? undefined : parts[2].split('&').map(optionProblem).find(Boolean));
  return problem ? E.left(problem) : E.right({ kind: 'esdb', connectionString: text });
}

/** Where a store URL points, or why it points nowhere (the configuration's check, before any store opens). */
export function locateStore(url: string): E.Either<string, StoreLocation> {
  const text = url.trim();
  if (text.startsWith('sqlite:')) return sqliteLocation(text.slice('sqlite:'.length));
  const esdb = /^esdb(?:\+discover)?:\/\/(.*)$/.exec(text);
  return esdb ? esdbLocation(text, esdb[1]!) : E.left('unknown kind of store');
}

/** The store a URL names; a bad URL is a StoreConfigError that quotes it redacted. */
export function parseStoreUrl(url: string): StoreLocation {
  const location = locateStore(url);
  if (E.isLeft(location)) throw new StoreConfigError(`bad store URL ${JSON.stringify(redactStoreUrl(url))}: ${location.left}. Accepted forms: ${ACCEPTED}`);
  return location.right;
}

/**
 * A file beside the database of the SQLite store at `storeUrl` (`<db file><suffix>`), or undefined
 * for a store without a file (memory, EventStoreDB). Named after the database's real path: two
 * processes naming one database by different paths (relative, through a symlink) meet on one file.
 */
export function storeSidecarPath(storeUrl: string, suffix: string): string | undefined {
  const location = parseStoreUrl(storeUrl);
  return location.kind === 'sqlite' ? `${canonical(location.path)}${suffix}` : undefined;
}

function canonical(file: string): string {
  try {
    return realpathSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return resolve(file); // not created yet
    throw e;
  }
}

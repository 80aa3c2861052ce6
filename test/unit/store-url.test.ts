import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { NO_STREAM } from '../../src/eventstore/port.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { parseStoreUrl, redactStoreUrl } from '../../src/eventstore/store-location.ts';
import { DEFAULT_STORE } from '../../src/config.ts';
import { collect, event, idsOf } from '../support/store-fixtures.ts';

describe('parseStoreUrl', () => {
  it.each([
    ['sqlite:./data/ledger.db', { kind: 'sqlite', path: './data/ledger.db' }],
    ['sqlite:ledger.db', { kind: 'sqlite', path: 'ledger.db' }],
    ['sqlite:/var/lib/hedge-ledger/ledger.db', { kind: 'sqlite', path: '/var/lib/hedge-ledger/ledger.db' }],
    ['sqlite:///var/lib/ledger.db', { kind: 'sqlite', path: '/var/lib/ledger.db' }],
    ['  sqlite:ledger.db\n', { kind: 'sqlite', path: 'ledger.db' }],
    ['sqlite::memory:', { kind: 'sqlite-memory' }],
    ['esdb://localhost:2113?tls=false', { kind: 'esdb', connectionString: 'esdb://localhost:2113?tls=false' }],
    ['esdb+discover://a:2113,b:2113,c:2113?nodePreference=leader', { kind: 'esdb', connectionString: 'esdb+discover://a:2113,b:2113,c:2113?nodePreference=leader' }],
  ])('%s', (url, expected) => {
    expect(parseStoreUrl(url)).toEqual(expected);
  });

  it('defaults to ./data/ledger.db', () => {
    expect(parseStoreUrl(DEFAULT_STORE)).toEqual({ kind: 'sqlite', path: './data/ledger.db' });
  });

  it.each([
    ['', 'unknown kind of store'],
    ['ledger.db', 'unknown kind of store'],
    ['postgres://localhost/ledger', 'unknown kind of store'],
    ['sqlite:', 'the path is missing'],
    ['sqlite://host/ledger.db', 'not a host'],
    ['sqlite:./data/', 'ends with "/"'],
    ['sqlite:///', 'ends with "/"'],
    ['esdb://', 'the host is missing'],
    ['esdb+discover://?tls=false', 'the host is missing'],
  ])('refuses %j with a StoreConfigError naming the URL and the accepted forms', (url, why) => {
    let error: unknown;
    try {
      parseStoreUrl(url);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ kind: 'StoreConfigError' });
    const message = (error as Error).message;
    expect(message).toContain(JSON.stringify(url));
    expect(message).toContain(why);
    for (const form of ['sqlite:<path>', 'sqlite::memory:', 'esdb://', 'esdb+discover://']) expect(message).toContain(form);
  });

  it.each([
    ['esdb://admin:s3cret@db:2113?foo=bar', 'unknown option "foo"'],
    ['esdb://admin:s3cret@db:2113?tls=false&tlsVerifyCert=false', 'tlsVerifyCert=false is not supported'],
    ['esdb://admin:s3cret@db:2113?tls=maybe', 'option tls must be true or false, not "maybe"'],
    ['esdb://admin:s3cret@db:2113?keepAliveTimeout=10s', 'option keepAliveTimeout must be a whole number'],
    ['esdb://admin:s3cret@db:2113?keepAliveInterval=-2', 'option keepAliveInterval must be a whole number, or -1 for off'],
    // The client would throw "Invalid defaultDeadline" only when the store opens.
    ['esdb://admin:s3cret@db:2113?defaultDeadline=0', 'option defaultDeadline must be a whole number from 1, not "0"'],
    ['esdb://admin:s3cret@db:2113?nodePreference=primary', 'option nodePreference must be leader (the default)'],
    // The client takes these, but reads from such a node may lag this process's own appends.
    ['esdb://admin:s3cret@db:2113?nodePreference=follower', 'option nodePreference must be leader (the default)'],
    ['esdb+discover://admin:s3cret@a:2113,b:2113?nodePreference=read_only_replica', 'option nodePreference must be leader (the default)'],
    ['esdb://admin:s3cret@db:2113?node_preference=random', 'option node_preference must be leader (the default)'],
    ['esdb://admin:s3cret@db:2113?tls', 'option "tls" is not key=value'],
    ['esdb://admin:s3cret@db:2113?tls=false?x=1', 'is not key=value'],
    ['esdb://admin:s3cret@db:abc', '"db:abc" is not host or host:port'],
    ['esdb://admin:s3cret@db:70000', 'port 70000 is out of range'],
    ['esdb+discover://admin:s3cret@a:2113,,b:2113', '"" is not host or host:port'],
    ['esdb://u:p@?tls=false', 'the host is missing'],
    // Not "the host is missing": the host is there, a path follows it.
    ['esdb://admin:s3cret@db:2113/ledger?tls=false', 'the host is followed by a path (only ?options may follow it)'],
    // The client matches every other key loosely but this one exactly: it would ignore these and print the URL.
    ['esdb://admin:s3cret@db:2113?dnsdiscover=true', 'spelled dnsDiscover'],
    ['esdb://admin:s3cret@db:2113?dns_discover=false', 'spelled dnsDiscover'],
    // The client splits user:password at every ':' and keeps the first two parts: it would log in with "s3cret".
    ['esdb://admin:s3cret:s3cret@db:2113', 'write it as %3A'],
    // The host would read "s3cret@db": the rest of the password would be quoted as a host in errors.
    ['esdb://admin:p@s3cret@db:2113', 'write it as %40'],
    // No ":" or an empty side: no password with an "@" in it, but credentials the client cannot log in with.
    ['esdb://s3cret@db:2113', 'the credentials must be user:password@'],
    ['esdb://admin:@db:2113', 'the credentials must be user:password@'],
    ['esdb://:s3cret@db:2113', 'the credentials must be user:password@'],
    // A "?" in the password, a path after the host: the password was read as a host ("admin:p") and an option, and quoted.
    ['esdb://admin:p?s3cret@db:2113/ledger', 'the host is followed by a path'],
    ['esdb://admin:12?s3cret@db:2113/ledger', 'the host is followed by a path'],
  ])('refuses the esdb URL %j before the client sees it, without its password', (url, why) => {
    expect(() => parseStoreUrl(url)).toThrow(why);
    expect(() => parseStoreUrl(url)).not.toThrow(/s3cret/);
  });

  it.each([
    'esdb://admin:s3cret@db.example.com:2113',
    'esdb://db:2113/?TLS=false&keep_alive_interval=20000&node-preference=LEADER',
    'esdb://db?connectionName=hedge&defaultDeadline=10000&throwOnAppendFailure=true',
    'esdb+discover://n1:2113,n2:2113,n3?nodePreference=leader&maxDiscoverAttempts=10&discoveryInterval=100&gossipTimeout=5',
    'esdb://db:2113?dnsDiscover=false',
    // -1 turns the client's keep-alive off, as its documentation says.
    'esdb://db:2113?tls=false&keepAliveInterval=-1&keepAliveTimeout=-1',
  ])('accepts %j, which the client takes without a warning', async (url) => {
    expect(parseStoreUrl(url)).toEqual({ kind: 'esdb', connectionString: url });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const { EsdbEventStore } = await import('../../src/eventstore/esdb.ts');
      await new EsdbEventStore(url).close();
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it('leaves a CA file for the client to read when the store opens', () => {
    const url = 'esdb://db:2113?tlsCAFile=%2Fetc%2Fledger%2Fca.crt';
    expect(parseStoreUrl(url)).toEqual({ kind: 'esdb', connectionString: url });
  });

  it.each([
    ['esdb://db:2113?password=s3cret', 'unknown option "password"', 'esdb://db:2113?password=***'],
    ['esdb://db:2113?tls=false&apiKey=s3=cret', 'option "apiKey=…" is not key=value', 'esdb://db:2113?tls=false&apiKey=***'],
  ])('quotes neither the value of an unknown option nor the rest of a bad pair: a misplaced password (%s)', (url, reason, shown) => {
    expect(() => parseStoreUrl(url)).toThrow(`bad store URL ${JSON.stringify(shown)}: ${reason}`);
    expect(() => parseStoreUrl(url)).not.toThrow(/s3/);
  });

  it('quotes a bad URL without its user:password', () => {
    expect(() => parseStoreUrl('kurrentdb://admin:s3cret@db:2113')).toThrow('bad store URL "kurrentdb://***@db:2113": unknown kind of store');
  });
});

describe('redactStoreUrl', () => {
  it.each([
    ['esdb://admin:changeit@db.example.com:2113?tls=false', 'esdb://***@db.example.com:2113?tls=false'],
    ['esdb+discover://ops:pw@n1:2113,n2:2113', 'esdb+discover://***@n1:2113,n2:2113'],
    ['esdb://admin:p@ss/w?rd@db:2113', 'esdb://***@db:2113'], // an unescaped password: up to the last @
    ['admin:s3cret@db', '***@db'],
    ['esdb://localhost:2113?tls=false', 'esdb://localhost:2113?tls=false'],
    ['sqlite:./data/ledger.db', 'sqlite:./data/ledger.db'],
  ])('%s', (url, shown) => {
    expect(redactStoreUrl(url)).toBe(shown);
  });
});

describe('openStore', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hedge-ledger-url-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a SQLite file and its missing parent directories', async () => {
    const file = join(dir, 'nested', 'deeper', 'ledger.db');
    const store = await openStore(`sqlite:${file}`);
    const e = event();
    await store.append('s-1', [e], NO_STREAM);
    await store.close();
    expect(existsSync(file)).toBe(true);
    const reopened = await openStore(`sqlite:${file}`);
    expect(idsOf(await collect(reopened.readStream('s-1')))).toEqual([e.id]);
    await reopened.close();
  });

  it('gives each sqlite::memory: store its own database', async () => {
    const [a, b] = [await openStore('sqlite::memory:'), await openStore('sqlite::memory:')];
    await a.append('s-1', [event()], NO_STREAM);
    expect(await b.headPosition()).toBeUndefined();
    await Promise.all([a.close(), b.close()]);
  });

  it('refuses a path ending with "/" before creating anything: SQLite would create the file without the "/"', async () => {
    const file = join(dir, 'meant-as-directory');
    await expect(openStore(`sqlite:${file}/`)).rejects.toMatchObject({ kind: 'StoreConfigError', message: expect.stringContaining('ends with "/"') });
    expect(existsSync(file)).toBe(false);
  });

  it('says so when the path names a directory, instead of asking whether its directory exists', async () => {
    const directory = mkdtempSync(join(dir, 'data-'));
    for (const create of [true, false]) {
      await expect(openStore(`sqlite:${directory}`, { create })).rejects.toMatchObject({
        kind: 'StoreConfigError',
        message: expect.stringContaining(`${directory} is a directory`),
      });
    }
  });

  it('reports a directory that cannot be created as a StoreConfigError', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    await expect(openStore(`sqlite:${file}/sub/ledger.db`)).rejects.toMatchObject({
      kind: 'StoreConfigError',
      message: expect.stringContaining(`${file}/sub`),
    });
  });
});

/** The store contract on the embedded SQLite store, then what only SQLite promises (files, locks, schema). */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import * as E from 'fp-ts/lib/Either.js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { decodeEvent } from '../../src/domain/events.ts';
import { ANY, NO_STREAM, type EventStore } from '../../src/eventstore/port.ts';
import { SqliteEventStore, type SqliteStoreOptions } from '../../src/eventstore/sqlite.ts';
import { MEMORY } from '../../src/eventstore/store-location.ts';
import { openStore } from '../../src/eventstore/url.ts';
import { collect, event, hedgeRequested, waitingForLive } from '../support/store-fixtures.ts';
import { describeStoreContract } from './suite.ts';
import { ROOT } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'hedge-ledger-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
const newFile = (): string => join(dir, `store-${++files}.db`);
const urls = new WeakMap<EventStore, string>();
let lastUrl: string | undefined;

describeStoreContract('SQLite file', {
  async open() {
    const url = `sqlite:${newFile()}`;
    const store = await openStore(url);
    urls.set(store, url);
    lastUrl = url;
    return store;
  },
  openSecondWriter: (first) => openStore(urls.get(first)!),
  childProcessUrl: () => lastUrl,
});

// Two-row pages push every read and subscription across page boundaries.
describeStoreContract('SQLite in memory, 2-row pages', { open: async () => new SqliteEventStore(MEMORY, { pageSize: 2 }) });

describe('SQLite store specifics', () => {
  const opened: { close(): unknown }[] = [];
  const track = <T extends { close(): unknown }>(closable: T): T => (opened.push(closable), closable);
  const open = (file = newFile(), options?: SqliteStoreOptions) => track(new SqliteEventStore(file, options));
  const raw = (file: string) => track(new Database(file));
  afterEach(async () => {
    for (const c of opened.splice(0).reverse()) await c.close();
  });

  it('creates a WAL-mode file at the current schema version; a fresh store has no head', async () => {
    const file = newFile();
    const store = open(file);
    expect(await store.headPosition()).toBeUndefined();
    await store.append('s-1', [event()], NO_STREAM);
    expect(await store.headPosition()).toBe('00000000000000000001');
    const db = raw(file);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(1);
  });

  it('cuts a WAL that outgrew the checkpoint interval back to that interval once a checkpoint has reset it', async () => {
    // A file keeps the page size it was created with (new stores get 16 KiB): at 1 KiB pages the interval, 10,000
    // pages, is a WAL of 32 + 10,000 × (24 + 1,024) bytes, ~10.5 MB instead of ~164 MB, so the test writes little.
    const file = newFile();
    const created = new Database(file);
    created.pragma('page_size = 1024');
    created.pragma('user_version = 0'); // writes the file's first page, fixing its page size
    created.close();
    const limit = 32 + 10_000 * (24 + 1_024);
    const walSize = () => statSync(`${file}-wal`).size;
    const store = open(file);
    // One append of ~16 MB: the WAL outgrows the interval, and the auto-checkpoint after that commit copies it all.
    const blob = 'x'.repeat(4_000);
    await store.append('wal-1', Array.from({ length: 4_000 }, () => event('Tested', { blob })), NO_STREAM);
    expect(walSize()).toBeGreaterThan(limit);
    // The next commit writes the WAL from its start again; without journal_size_limit the file would keep its size.
    await store.append('wal-1', [event()], 3_999n);
    expect(walSize()).toBeLessThanOrEqual(limit);
    expect(await store.readLastEvent('wal-1')).toMatchObject({ revision: 4_000n });
  });

  it('delivers a row whose data is not JSON as a string (a CorruptEvent once decoded) and moves on', async () => {
    const file = newFile();
    const store = open(file);
    await store.append('hedgecmd-tGME', [1, 2, 3].map((n) => hedgeRequested('tGME', n)), NO_STREAM);
    raw(file).prepare("UPDATE events SET data = 'not json {' WHERE revision = 1").run();

    const delivered = [];
    for await (const e of store.subscribe({ from: 'start' })) if (delivered.push(e) === 3) break;
    expect(delivered.map((e) => e.data)[1]).toBe('not json {');
    const decoded = delivered.map(decodeEvent);
    expect(decoded.map(E.isRight)).toEqual([true, false, true]);
    expect(decoded[1]).toEqual(E.left(expect.objectContaining({ kind: 'CorruptEvent', stream: 'hedgecmd-tGME', revision: 1n, path: 'data' })));
  });

  it('refuses an event id already stored in another stream, naming it, and writes nothing', async () => {
    const store = open();
    const e = event();
    await store.append('first-1', [e], NO_STREAM);
    const failure = store.append('second-1', [event(), e], NO_STREAM);
    await expect(failure).rejects.toMatchObject({ kind: 'WrongExpectedVersion', stream: 'second-1', expected: NO_STREAM, actual: NO_STREAM });
    await expect(failure).rejects.toThrow(`event id ${e.id} is already stored in first-1@0`);
    expect(await store.readLastEvent('second-1')).toBeUndefined();
  });

  it('refuses the same id twice in one append', async () => {
    const store = open();
    const e = event();
    await expect(store.append('twice-1', [e, e], NO_STREAM)).rejects.toMatchObject({ kind: 'WrongExpectedVersion' });
    expect(await store.headPosition()).toBeUndefined();
  });

  it('ANY with ids already in the stream writes nothing; a partial overlap is a conflict', async () => {
    const store = open();
    const [a, b, c] = [event(), event(), event()];
    await store.append('any-1', [a, b], NO_STREAM);
    await store.append('any-1', [c], ANY);
    expect(await store.append('any-1', [a, b], ANY)).toEqual({ nextRevision: 1n, written: false });
    expect(await store.append('any-1', [c], ANY)).toEqual({ nextRevision: 2n, written: false });
    await expect(store.append('any-1', [b, event()], ANY)).rejects.toMatchObject({ kind: 'WrongExpectedVersion', expected: ANY, actual: 2n });
    await expect(store.append('any-1', [event(), a], ANY)).rejects.toMatchObject({ kind: 'WrongExpectedVersion', expected: ANY });
    expect(await collect(store.readStream('any-1'))).toHaveLength(3);
  });

  describe('without polling (other-process poll interval: an hour)', () => {
    const never = { pollMs: { min: 3_600_000, max: 3_600_000 } };
    const orFail = <T>(promise: Promise<T>, what: string): Promise<T> =>
      Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(what)), 5_000).unref())]);

    it('an append through another instance in this process wakes a waiting subscription', async () => {
      const file = newFile();
      const reader = open(file, never);
      const writer = open(file, never);
      const live = reader.subscribe({ from: 'start' })[Symbol.asyncIterator]().next();
      await waitingForLive();
      const e = event();
      await writer.append('wake-1', [e], NO_STREAM);
      expect(await orFail(live, 'not woken by the append')).toMatchObject({ value: { id: e.id } });
    });

    it('close() ends every pending next() at once, overlapping ones included', async () => {
      const subscription = open(newFile(), never).subscribe({ from: 'start' });
      const it = subscription[Symbol.asyncIterator]();
      const pending = [it.next(), it.next()];
      await waitingForLive();
      await subscription.close();
      expect(await orFail(Promise.all(pending), 'a pending next() outlived close()')).toEqual([
        { done: true, value: undefined },
        { done: true, value: undefined },
      ]);
    });
  });

  it('refuses a file from a newer schema version', () => {
    const file = newFile();
    raw(file).pragma('user_version = 99');
    expect(() => open(file)).toThrow(
      expect.objectContaining({ kind: 'StoreConfigError', message: expect.stringContaining('created by a newer hedge-ledger (schema v99, this build knows v1)') }),
    );
  });

  it('refuses a file that is not a SQLite database, and a SQLite database that is not a store', () => {
    const text = newFile();
    writeFileSync(text, 'hello, this is not a database at all, but it is long enough to have a header of sorts\n'.repeat(20));
    expect(() => open(text)).toThrow(expect.objectContaining({ kind: 'StoreConfigError', message: expect.stringContaining('not a SQLite database') }));
    const foreign = newFile();
    raw(foreign).exec('CREATE TABLE accounts (id INTEGER PRIMARY KEY)');
    expect(() => open(foreign)).toThrow(expect.objectContaining({ kind: 'StoreConfigError', message: expect.stringContaining('not a hedge-ledger event store') }));
  });

  it('leaves another application\'s database it refuses in its rollback journal mode, not WAL', () => {
    const foreign = newFile();
    const db = new Database(foreign);
    db.exec('CREATE TABLE accounts (id INTEGER PRIMARY KEY)');
    db.close();
    expect(() => open(foreign)).toThrow(expect.objectContaining({ message: expect.stringContaining('not a hedge-ledger event store') }));
    // WAL is the one journal mode stored in the file: left so, the other application would go on in it.
    expect(raw(foreign).pragma('journal_mode', { simple: true })).toBe('delete');
  });

  it('refuses a copy of a live store taken without its -wal file instead of opening it as a new, empty ledger', async () => {
    const file = newFile();
    const live = open(file);
    await live.append('s-1', [event()], NO_STREAM);
    // While a process has it open, every commit (the schema's too) is still in ledger.db-wal.
    const copy = newFile();
    copyFileSync(file, copy);
    expect(existsSync(`${copy}-wal`)).toBe(false);
    expect(() => open(copy)).toThrow(expect.objectContaining({ kind: 'StoreConfigError', message: expect.stringContaining('without its -wal file') }));
    // A copy made with SQLite's backup (VACUUM INTO) holds everything.
    const backup = newFile();
    raw(file).exec(`VACUUM INTO '${backup}'`);
    expect(await open(backup).headPosition()).toBe('00000000000000000001');
  });

  it('opens a new file that another process is creating at that moment (WAL set, schema not yet committed)', async () => {
    const file = newFile();
    // A process creating the store turns the new file WAL and commits the schema a moment later; in
    // between, the file is an empty WAL-mode database without a -wal, like a copy taken without it.
    const creator = spawn(process.execPath, ['-e', `
      const db = new (require('better-sqlite3'))(process.argv[1]);
      db.pragma('page_size = 16384'); db.pragma('journal_mode = WAL');
      console.log('wal');
      setTimeout(() => {
        db.exec('BEGIN IMMEDIATE; CREATE TABLE events (position INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, stream TEXT NOT NULL, revision INTEGER NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, metadata TEXT, UNIQUE (stream, revision)) STRICT; CREATE TABLE checkpoints (name TEXT PRIMARY KEY, position TEXT NOT NULL, snapshot TEXT) STRICT; PRAGMA user_version = 1; COMMIT');
        console.log('migrated');
        setTimeout(() => db.close(), 1000);
      }, 300);`, file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => creator.once('close', resolve));
    await new Promise<void>((resolve) => creator.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('wal') && resolve()));
    expect(existsSync(`${file}-wal`)).toBe(false);
    const store = open(file);
    await store.append('racing-1', [event()], NO_STREAM);
    expect(await store.headPosition()).toBe('00000000000000000001');
    await exited;
  });

  it('opens a new file whose creation failed on a full disk as a new store, not as a copy taken without its -wal', async () => {
    const file = newFile();
    // A file size limit stands in for a full disk: the header fits, the schema's commit to the -wal does not
    // (the write fails with EFBIG, reported as an I/O error, instead of the process being killed by SIGXFSZ).
    const script = `const { SqliteEventStore } = await import('./src/eventstore/sqlite.ts');
      try { new SqliteEventStore(process.argv[1]); } catch (e) { console.log(e.kind); }`;
    const creator = spawn('bash', ['-c', `trap '' XFSZ; ulimit -f 40; exec "$0" --import tsx --input-type=module -e "$1" "$2"`, process.execPath, script, file], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    creator.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await new Promise((resolve) => creator.once('close', resolve));
    expect(output.trim()).toBe('StoreUnavailable');
    // Space freed: the retry the StoreUnavailable asked for creates the store.
    const store = open(file);
    expect(await store.headPosition()).toBeUndefined();
    await store.append('full-1', [event()], NO_STREAM);
    expect(await store.headPosition()).toBe('00000000000000000001');
  });

  it('fails writes with StoreConfigError once its file is deleted or replaced under it', async () => {
    const file = newFile();
    const store = open(file);
    await store.append('moved-1', [event()], NO_STREAM);
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
    // Without a check SQLite goes on writing into the deleted file, which nothing else sees and which vanishes at exit.
    await expect(store.append('moved-1', [event()], 0n)).rejects.toMatchObject({ kind: 'StoreConfigError', message: expect.stringContaining('deleted or replaced') });
    await expect(store.saveCheckpoint('c', { position: '00000000000000000001' as never })).rejects.toMatchObject({ kind: 'StoreConfigError' });
    await expect(store.headPosition()).rejects.toMatchObject({ kind: 'StoreConfigError' });
    // Replaced by another store (a restore while running): the same.
    const other = newFile();
    const second = open(other);
    await second.append('moved-2', [event()], NO_STREAM);
    const replaced = newFile();
    await open(replaced).close();
    renameSync(replaced, other);
    await expect(second.append('moved-2', [event()], 0n)).rejects.toMatchObject({ kind: 'StoreConfigError' });
  });

  it('reports a write-locked file as StoreUnavailable after the busy timeout; reads still work', async () => {
    const file = newFile();
    const store = open(file, { busyTimeoutMs: 50 });
    await store.append('lock-1', [event()], NO_STREAM);
    const other = raw(file);
    other.exec('BEGIN IMMEDIATE');
    await expect(store.append('lock-1', [event()], 0n)).rejects.toMatchObject({ kind: 'StoreUnavailable', message: expect.stringContaining('locked') });
    expect(await store.readLastEvent('lock-1')).toMatchObject({ revision: 0n });
    other.exec('ROLLBACK');
    expect(await store.append('lock-1', [event()], 0n)).toEqual({ nextRevision: 1n, written: true });
  });

  it('reports an exclusively locked file as StoreUnavailable when opening', async () => {
    const file = newFile();
    await open(file).close();
    const other = raw(file);
    other.pragma('locking_mode = EXCLUSIVE');
    other.exec('BEGIN EXCLUSIVE; COMMIT');
    expect(() => open(file, { busyTimeoutMs: 50 })).toThrow(expect.objectContaining({ kind: 'StoreUnavailable' }));
  });

  it('rejects positions that are not its own, and use after close', async () => {
    const store = open();
    await expect(collect(store.readAll({ from: '00000000000000000001/00000000000000000001' as never }))).rejects.toMatchObject({ kind: 'StoreConfigError' });
    await store.close();
    await expect(store.append('closed-1', [event()], NO_STREAM)).rejects.toMatchObject({ kind: 'StoreUnavailable' });
    await expect(collect(store.readAll())).rejects.toMatchObject({ kind: 'StoreUnavailable' });
  });
});

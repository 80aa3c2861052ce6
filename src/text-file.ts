/** Text files we are handed (logs, tokens, configuration), read as people and tools write them. */
import { createReadStream, readFileSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/** Where a line is in its file: numbered from 1, its first byte, and its length in bytes without the \n. */
export interface LinePlace {
  readonly number: number;
  readonly offset: number;
  readonly bytes: number;
}

/** A line and its text, or (text null) one longer than the limit, of which only the place is kept. */
export interface Line extends LinePlace {
  readonly text: string | null;
}

const NEWLINE = 0x0a;
const TRAILING_CR = /\r$/;
const BOM = '\uFEFF';

/** Without a leading byte order mark: some editors write one in UTF-8 too, and JSON.parse refuses it. */
const stripBom = (text: string): string => (text.startsWith(BOM) ? text.slice(1) : text);

/** The file's text, without a leading byte order mark. */
export const readTextFile = (path: string): string => stripBom(readFileSync(path, 'utf8'));

/** A line's bytes as text, without its \r; the file's first line also without a byte order mark. */
function decode(parts: readonly Buffer[], bytes: number, first: boolean): string {
  const text = Buffer.concat(parts, bytes).toString('utf8').replace(TRAILING_CR, '');
  return first ? stripBom(text) : text;
}

/**
 * The lines of `chunks` (ended by \n or \r\n), decoded as UTF-8. A line longer than
 * `maxLineBytes` is dropped as it arrives and reported by its length: one unbounded line must
 * not exhaust memory, nor exceed what a string can hold (readline throws a RangeError then).
 */
export async function* splitLines(chunks: AsyncIterable<Buffer>, maxLineBytes: number): AsyncGenerator<Line> {
  let parts: Buffer[] = [];
  let bytes = 0;
  let number = 0;
  let offset = 0;
  const take = (part: Buffer): void => {
    bytes += part.length;
    if (bytes <= maxLineBytes) parts.push(part);
    else parts = [];
  };
  const finish = (): Line => {
    number++;
    const line: Line = { number, offset, bytes, text: bytes <= maxLineBytes ? decode(parts, bytes, number === 1) : null };
    offset += bytes + 1;
    parts = [];
    bytes = 0;
    return line;
  };
  for await (const chunk of chunks) {
    let start = 0;
    let end: number;
    while ((end = chunk.indexOf(NEWLINE, start)) !== -1) {
      take(chunk.subarray(start, end));
      yield finish();
      start = end + 1;
    }
    take(chunk.subarray(start));
  }
  if (bytes > 0) yield finish();
}

/** The lines of the file at `path`; see splitLines. */
export const readLines = (path: string, maxLineBytes: number): AsyncGenerator<Line> => splitLines(createReadStream(path), maxLineBytes);

/** The text of the line at `place` in an open file, as splitLines gave it; shorter if the file has shrunk since. */
export async function readLineAt(file: FileHandle, place: LinePlace): Promise<string> {
  const buffer = Buffer.allocUnsafe(place.bytes);
  const { bytesRead } = await file.read(buffer, 0, place.bytes, place.offset);
  return decode([buffer.subarray(0, bytesRead)], bytesRead, place.number === 1);
}

// A JSON string, with the colon that makes it a key, or a bracket outside any string.
const JSON_TOKEN = /("(?:[^"\\]|\\.)*")(\s*:)?|[{}[\]]/g;

/** A key as written, with the object holding it: its number, in order of opening, and its path ('' for the top level). */
interface KeyAt {
  readonly object: number;
  readonly path: string;
  readonly key: string;
}

const within = (path: string, key: string) => (path === '' ? key : `${path}.${key}`);

/**
 * Every key of `text` (valid JSON) as written, repeats included: JSON.parse keeps the last of a
 * repeated key. Paths name nested objects by their keys, an array's elements as `owners[]`.
 */
function keysOf(text: string): KeyAt[] {
  const open: { readonly object: number | null; readonly path: string }[] = [];
  const keys: KeyAt[] = [];
  let objects = 0;
  let lastKey = '';
  for (const [token, string, colon] of text.matchAll(JSON_TOKEN)) {
    const parent = open[open.length - 1];
    if (token === '{' || token === '[') {
      const path = parent === undefined ? '' : parent.object === null ? `${parent.path}[]` : within(parent.path, lastKey);
      open.push({ object: token === '{' ? objects++ : null, path });
    } else if (token === '}' || token === ']') open.pop();
    else if (colon !== undefined && parent !== undefined && parent.object !== null) {
      lastKey = JSON.parse(string!) as string;
      keys.push({ object: parent.object, path: parent.path, key: lastKey });
    }
  }
  return keys;
}

/**
 * Keys of `text` (valid JSON) given more than once in one object, at any depth, each as the path
 * of its repeat (`chainId`, `brokerSymbols.SPLG`; an array's elements as `owners[]`).
 */
export function repeatedKeyPaths(text: string): string[] {
  const seen = new Set<string>();
  const repeats = new Set<string>();
  for (const { object, path, key } of keysOf(text)) {
    const id = JSON.stringify([object, key]);
    if (seen.has(id)) repeats.add(within(path, key));
    else seen.add(id);
  }
  return [...repeats];
}

/** Top-level keys of `text` (valid JSON) given more than once, alike under `same`: [first spelling, repeat]. */
export function repeatedKeys(text: string, same: (key: string) => string = (key) => key): [string, string][] {
  const first = new Map<string, string>();
  const repeats: [string, string][] = [];
  for (const { key } of keysOf(text).filter((k) => k.path === '')) {
    const seen = first.get(same(key));
    if (seen === undefined) first.set(same(key), key);
    else repeats.push([seen, key]);
  }
  return repeats;
}

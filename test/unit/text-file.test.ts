/** Lines of a file handed to us: split wherever the chunks break, and bounded however long a line is. */
import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLineAt, readLines, splitLines, type Line } from '../../src/text-file.ts';

/** The lines of `chunks`, each one chunk of the stream. */
async function linesOf(chunks: readonly (string | Buffer)[], maxLineBytes = 100): Promise<Line[]> {
  const lines: Line[] = [];
  for await (const line of splitLines(Readable.from(chunks.map((c) => Buffer.from(c))), maxLineBytes)) lines.push(line);
  return lines;
}

describe('splitLines', () => {
  it('splits on \\n and \\r\\n wherever the chunks break, keeps empty lines, and ends with the last line, newline or not', async () => {
    const texts = ['{"a":1}', '', 'b', 'ünïcödé', 'last'];
    const whole = `${texts[0]}\r\n${texts[1]}\n${texts[2]}\n${texts[3]}\n${texts[4]}`;
    const bytes = Buffer.from(`\uFEFF${whole}`);
    // Every split point, including inside the byte order mark (dropped), the \r\n and a two-byte character.
    for (let cut = 0; cut <= bytes.length; cut++) {
      expect((await linesOf([bytes.subarray(0, cut), bytes.subarray(cut)])).map(({ number, text }) => ({ number, text }))).toEqual(texts.map((text, i) => ({ number: i + 1, text })));
    }
    expect(await linesOf([`${whole}\n`])).toHaveLength(texts.length);
    expect(await linesOf([])).toEqual([]);
    expect(await linesOf(['a\n\uFEFFb'])).toEqual([{ number: 1, offset: 0, bytes: 1, text: 'a' }, { number: 2, offset: 2, bytes: 4, text: '\uFEFFb' }]); // only a file's first line starts it
  });

  it('gives each line its place in the file, from which readLineAt reads the same text back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'text-file-'));
    const file = join(dir, 'lines.txt');
    writeFileSync(file, `\uFEFFfirst\r\n\nünï\n${'x'.repeat(30)}\nlast`);
    const lines: Line[] = [];
    for await (const line of readLines(file, 20)) lines.push(line);
    expect(lines.map(({ number, offset, bytes }) => [number, offset, bytes])).toEqual([[1, 0, 9], [2, 10, 0], [3, 11, 5], [4, 17, 30], [5, 48, 4]]);
    const handle = await open(file);
    try {
      for (const line of lines) expect(await readLineAt(handle, line)).toBe(line.text ?? 'x'.repeat(30));
    } finally {
      await handle.close();
      rmSync(dir, { recursive: true });
    }
  });

  it('reports a line longer than the limit by its length, unread, and keeps the lines around it whole', async () => {
    const long = 'x'.repeat(25);
    expect(await linesOf(['first\n', long, long, long, long, 'x\nat limit 20 bytes...\nthird'], 20)).toEqual([
      { number: 1, offset: 0, bytes: 5, text: 'first' },
      { number: 2, offset: 6, bytes: 101, text: null },
      { number: 3, offset: 108, bytes: 20, text: 'at limit 20 bytes...' },
      { number: 4, offset: 129, bytes: 5, text: 'third' },
    ]);
    expect(await linesOf([long], 20)).toEqual([{ number: 1, offset: 0, bytes: 25, text: null }]);
  });
});

/** Lines of a file handed to us: split wherever the chunks break, and bounded however long a line is. */
import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { splitLines, type Line } from '../../src/text-file.ts';

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
      expect(await linesOf([bytes.subarray(0, cut), bytes.subarray(cut)])).toEqual(texts.map((text, i) => ({ number: i + 1, text })));
    }
    expect(await linesOf([`${whole}\n`])).toHaveLength(texts.length);
    expect(await linesOf([])).toEqual([]);
    expect(await linesOf(['a\n\uFEFFb'])).toEqual([{ number: 1, text: 'a' }, { number: 2, text: '\uFEFFb' }]); // only a file's first line starts it
  });

  it('reports a line longer than the limit by its length, unread, and keeps the lines around it whole', async () => {
    const long = 'x'.repeat(25);
    expect(await linesOf(['first\n', long, long, long, long, 'x\nat limit 20 bytes...\nthird'], 20)).toEqual([
      { number: 1, text: 'first' },
      { number: 2, text: null, bytes: 101 },
      { number: 3, text: 'at limit 20 bytes...' },
      { number: 4, text: 'third' },
    ]);
    expect(await linesOf([long], 20)).toEqual([{ number: 1, text: null, bytes: 25 }]);
  });
});

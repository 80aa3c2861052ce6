/**
 * Dependencies point inward: everything projections/ loads at run time, directly or through the
 * domain, is pure. ESLint checks each file's own imports; this follows them all the way down.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
/** What a fold may load: codecs, and hashing for deterministic ids. */
const PURE_PACKAGES = new Set(['io-ts', 'fp-ts/lib/Either.js', 'fp-ts/lib/function.js', 'node:crypto']);

const IMPORT = /^\s*(?:import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;

/** The modules a file loads at run time: type-only imports are erased and load nothing. */
function runtimeImports(source: string): string[] {
  const found: string[] = [];
  for (const [, typeOnly, names, specifier, dynamic, sideEffect] of source.matchAll(IMPORT)) {
    if (sideEffect !== undefined) found.push(sideEffect); // import './setup.ts': loaded for what it does
    else if (dynamic !== undefined) found.push(dynamic);
    else if (typeOnly === undefined && !allTypes(names ?? '')) found.push(specifier!);
  }
  return found;
}

/** `{ type A, type B }` loads nothing either. */
const allTypes = (names: string): boolean => /^\{[^}]*\}$/.test(names) && names.slice(1, -1).split(',').every((n) => n.trim() === '' || n.trim().startsWith('type '));

/** Every package reached from `entries`, with the chain of files that reaches it first. */
function reachedPackages(entries: string[]): Map<string, string[]> {
  const packages = new Map<string, string[]>();
  const seen = new Set<string>();
  const queue = entries.map((file) => [file]);
  while (queue.length > 0) {
    const chain = queue.shift()!;
    const file = chain.at(-1)!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const specifier of runtimeImports(readFileSync(file, 'utf8'))) {
      if (specifier.startsWith('.')) queue.push([...chain, resolve(dirname(file), specifier)]);
      else if (!packages.has(specifier)) packages.set(specifier, chain.map((f) => relative(ROOT, f)));
    }
  }
  return packages;
}

describe('architecture', () => {
  const folds = readdirSync(join(ROOT, 'projections')).filter((f) => f.endsWith('.ts')).map((f) => join(ROOT, 'projections', f));

  it('projections/ load no I/O, clock or adapter, however indirectly', () => {
    const reached = reachedPackages(folds);
    expect(reached.has('io-ts'), 'the walk reaches the folds\' codecs: it read their imports').toBe(true);
    const impure = [...reached].filter(([name]) => !PURE_PACKAGES.has(name)).map(([name, chain]) => `${name} via ${chain.join(' → ')}`);
    expect(impure).toEqual([]);
  });

  it('reads imports as TypeScript erases them', () => {
    const source = [
      "import * as t from 'io-ts';",
      "import type { Hex } from 'viem';",
      "import { type Logger, type Level } from 'pino';",
      "import { type Logger, pino } from 'pino-mixed';",
      "export { x } from './x.ts';",
      "const m = await import('node:fs');",
      'import { readFileSync } from "node:path";',
      "import '../src/log.ts';",
    ].join('\n');
    expect(runtimeImports(source)).toEqual(['io-ts', 'pino-mixed', './x.ts', 'node:fs', 'node:path', '../src/log.ts']);
  });
});

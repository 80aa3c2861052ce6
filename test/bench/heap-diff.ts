/**
 * Compares two V8 heap snapshots of one process (e.g. the ones `bench:soak --snapshots` has the
 * service write): what grew between them, by constructor, and by owner — the nearest retainer
 * that is an instance of a named class (a cache, a view, a registry), found by walking up the
 * first strong retainer of every object. A snapshot is taken after a full GC, so what it holds
 * is live.
 *
 * Run: `npx tsx test/bench/heap-diff.ts <older.heapsnapshot> <newer.heapsnapshot>`
 * (a 30 MB snapshot needs ~1 GB of heap: `NODE_OPTIONS=--max-old-space-size=4096`).
 */
import { readFileSync } from 'node:fs';
import { printTable } from './machine.ts';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** Anonymous containers: an owner is the nearest retainer that is none of these. */
const CONTAINERS = new Set(['Object', 'Array', 'Map', 'Set', 'Generator', 'Promise', 'WeakRef', 'Listener', '']);
const SKIPPED_TYPES = new Set(['code', 'hidden', 'object shape', 'synthetic', 'native']);

interface Tally { count: number; bytes: number }

function tally(file: string): { byConstructor: Map<string, Tally>; byOwner: Map<string, Tally>; total: number } {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const { node_fields: nf, node_types: [nodeTypes], edge_fields: ef, edge_types: [edgeTypes] } = s.snapshot.meta;
  const N = nf.length;
  const E = ef.length;
  const [TYPE, NAME, SIZE, EDGES] = ['type', 'name', 'self_size', 'edge_count'].map((f) => nf.indexOf(f)) as [number, number, number, number];
  const [EDGE_TYPE, EDGE_TO] = ['type', 'to_node'].map((f) => ef.indexOf(f)) as [number, number];
  const count = s.nodes.length / N;
  const type = (i: number) => nodeTypes[s.nodes[i * N + TYPE]!]!;
  const name = (i: number) => s.strings[s.nodes[i * N + NAME]!]!;
  const firstRetainer = new Int32Array(count).fill(-1);
  for (let i = 0, e = 0; i < count; i++) {
    for (let j = 0; j < s.nodes[i * N + EDGES]!; j++, e += E) {
      const edgeType = edgeTypes[s.edges[e + EDGE_TYPE]!];
      const to = s.edges[e + EDGE_TO]! / N;
      if (edgeType !== 'weak' && edgeType !== 'shortcut' && firstRetainer[to] === -1) firstRetainer[to] = i;
    }
  }
  const byConstructor = new Map<string, Tally>();
  const byOwner = new Map<string, Tally>();
  const add = (m: Map<string, Tally>, key: string, bytes: number) => {
    const t = m.get(key) ?? { count: 0, bytes: 0 };
    t.count++;
    t.bytes += bytes;
    m.set(key, t);
  };
  let total = 0;
  for (let i = 0; i < count; i++) {
    const bytes = s.nodes[i * N + SIZE]!;
    total += bytes;
    const t = type(i);
    add(byConstructor, t === 'object' || t === 'closure' ? `${t} ${name(i)}` : `(${t})`, bytes);
    if (SKIPPED_TYPES.has(t)) continue;
    let owner = '(none found)';
    for (let up = firstRetainer[i]!, depth = 0; up >= 0 && depth < 40; up = firstRetainer[up]!, depth++) {
      const ut = type(up);
      const un = name(up);
      if (ut === 'synthetic' || (ut === 'object' && !CONTAINERS.has(un) && !un.startsWith('system /')) || (ut === 'closure' && un !== '')) {
        owner = `${ut} ${un}`;
        break;
      }
    }
    add(byOwner, owner, bytes);
  }
  return { byConstructor, byOwner, total };
}

function growth(before: Map<string, Tally>, after: Map<string, Tally>, top = 15): string[][] {
  return [...after]
    .map(([key, t]) => ({ key, t, d: { count: t.count - (before.get(key)?.count ?? 0), bytes: t.bytes - (before.get(key)?.bytes ?? 0) } }))
    .sort((a, b) => b.d.bytes - a.d.bytes || b.d.count - a.d.count)
    .slice(0, top)
    .map(({ key, t, d }) => [key.slice(0, 60), `${d.count >= 0 ? '+' : ''}${d.count}`, `${d.bytes >= 0 ? '+' : ''}${Math.round(d.bytes / 1024)}`, `${t.count}`, `${Math.round(t.bytes / 1024)}`]);
}

const [olderFile, newerFile] = process.argv.slice(2);
if (olderFile === undefined || newerFile === undefined) throw new Error('usage: heap-diff.ts <older.heapsnapshot> <newer.heapsnapshot>');
const older = tally(olderFile);
const newer = tally(newerFile);
console.log(`live heap: ${(older.total / 1e6).toFixed(1)} MB → ${(newer.total / 1e6).toFixed(1)} MB\n\nby constructor:`);
printTable(growth(older.byConstructor, newer.byConstructor), ['constructor', 'Δ objects', 'Δ KB', 'objects', 'KB']);
console.log('\nby owner (nearest retainer of a named class):');
printTable(growth(older.byOwner, newer.byOwner), ['owner', 'Δ objects', 'Δ KB', 'objects', 'KB']);

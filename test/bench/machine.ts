/** What every benchmark prints: the machine it ran on, and peak memory. */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

export function machine(): string {
  const cpu = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
  return `machine: ${availableParallelism()} cores, ${cpu}, node ${process.version}, ${process.platform}/${process.arch}`;
}

/** Peak resident set size of this process so far, in MB. */
export const peakRssMb = (): number => Math.round(process.resourceUsage().maxRSS / 1024);

export function printTable(rows: readonly (readonly (string | number)[])[], headers: readonly string[]): void {
  const cells = [headers, ...rows].map((r) => r.map(String));
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  for (const r of cells) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
}

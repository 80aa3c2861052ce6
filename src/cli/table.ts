/** Plain aligned text tables for the terminal. */
export function table(headers: readonly string[], rows: readonly (readonly (string | number | null | boolean)[])[]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null ? '-' : String(c))))];
  // A loop, not Math.max(...column): spreading a column of 150,000 rows (a ledger's rejected logs) overflows the stack.
  const widths = headers.map(() => 0);
  for (const r of cells) widths.forEach((w, i) => (widths[i] = Math.max(w, (r[i] ?? '').length)));
  const line = (r: readonly string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(cells[0]!), line(widths.map((w) => '-'.repeat(w))), ...cells.slice(1).map(line)].join('\n');
}

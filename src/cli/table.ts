/** Plain aligned text tables for the terminal. */
export type Cell = string | number | null | boolean;

const text = (c: Cell): string => (c === null ? '-' : String(c));

/**
 * A table's columns, as wide as their widest cell: fitted to every row first, then printed line by
 * line, so that a command can stream the rows of a second pass instead of holding them all.
 */
export class Columns {
  private readonly widths: number[];

  constructor(private readonly headers: readonly string[]) {
    this.widths = headers.map((h) => h.length);
  }

  fit(row: readonly Cell[]): void {
    // A loop, not Math.max(...column): spreading a column of 150,000 rows (a ledger's rejected logs) overflows the stack.
    this.widths.forEach((w, i) => (this.widths[i] = Math.max(w, i < row.length ? text(row[i]!).length : 0)));
  }

  /** The header and the rule under it. */
  head(): string {
    return `${this.line(this.headers)}\n${this.line(this.widths.map((w) => '-'.repeat(w)))}`;
  }

  line(row: readonly Cell[]): string {
    return row.map((c, i) => text(c).padEnd(this.widths[i]!)).join('  ').trimEnd();
  }
}

export function table(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const columns = new Columns(headers);
  for (const r of rows) columns.fit(r);
  return [columns.head(), ...rows.map((r) => columns.line(r))].join('\n');
}

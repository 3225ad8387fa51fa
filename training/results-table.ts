/**
 * Results tables: one table written as Markdown (for reading and READMEs) and CSV (for tools), used by the
 * supervised benchmarks and reusable by any suite command.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../util/files.js';

/** A table cell: numbers are formatted with the table's `digits`; null prints as the table's `missing`. */
export type Cell = string | number | null;

export interface ResultsTable {
  title: string;
  /** Printed under the table in Markdown (sizes, what was scaled down, how numbers were computed). */
  caption?: string;
  columns: string[];
  rows: Cell[][];
  /** Decimal places for numbers in Markdown (CSV keeps full precision). Default 1. */
  digits?: number;
  /** Markdown text of null cells (CSV leaves them empty). Default empty. */
  missing?: string;
}

function checkShape(table: ResultsTable): void {
  table.rows.forEach((row, i) => {
    if (row.length !== table.columns.length) {
      throw new Error(`Results table '${table.title}': row ${i} has ${row.length} cells, expected ${table.columns.length}.`);
    }
  });
}

function mdCell(cell: Cell, digits: number, missing = ''): string {
  if (cell === null) return missing;
  if (typeof cell === 'number') return Number.isFinite(cell) ? cell.toFixed(digits) : String(cell);
  return cell.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The table as GitHub-flavoured Markdown: a heading, the table, then the caption. */
export function toMarkdown(table: ResultsTable): string {
  checkShape(table);
  const digits = table.digits ?? 1;
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const numeric = table.columns.map((_, j) => table.rows.length > 0 && table.rows.every((r) => typeof r[j] !== 'string'));
  const out = [
    `### ${table.title}`,
    '',
    line(table.columns.map((c) => mdCell(c, digits))),
    line(numeric.map((n) => (n ? '---:' : '---'))),
    ...table.rows.map((r) => line(r.map((c) => mdCell(c, digits, table.missing)))),
  ];
  if (table.caption) out.push('', table.caption);
  return `${out.join('\n')}\n`;
}

function csvCell(cell: Cell): string {
  if (cell === null) return '';
  const s = String(cell);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The table as RFC 4180 CSV (header row, then rows; numbers at full precision). */
export function toCsv(table: ResultsTable): string {
  checkShape(table);
  return `${[table.columns, ...table.rows].map((r) => r.map(csvCell).join(',')).join('\n')}\n`;
}

/** Writes `<dir>/<basename>.md` and `<dir>/<basename>.csv` atomically; returns both paths. */
export async function writeResultsTable(dir: string, basename: string, table: ResultsTable): Promise<{ md: string; csv: string }> {
  const md = join(dir, `${basename}.md`);
  const csv = join(dir, `${basename}.csv`);
  await writeFileAtomic(md, toMarkdown(table));
  await writeFileAtomic(csv, toCsv(table));
  return { md, csv };
}

/** Mean and population standard deviation (std 0 for one value; NaN for none). */
export function meanStd(values: readonly number[]): { mean: number; std: number } {
  if (values.length === 0) return { mean: Number.NaN, std: Number.NaN };
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
  return { mean, std };
}

/** A `mean ± std` cell of several values (just the value for one; null for none or any non-finite value). */
export function meanStdCell(values: readonly number[], digits = 1): Cell {
  if (values.length === 0 || !values.every(Number.isFinite)) return null;
  const { mean, std } = meanStd(values);
  return values.length === 1 ? mean : `${mean.toFixed(digits)} ± ${std.toFixed(digits)}`;
}

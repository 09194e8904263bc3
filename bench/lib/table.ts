/** A Markdown table whose columns are padded, so it reads well in a terminal and pastes into docs. */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(3, ...cells.map((r) => (r[i] ?? '').length)));
  // Numbers (and '-') read best right-aligned; text left-aligned.
  const numeric = header.map((_, i) => rows.every((r) => /^[-+]?[\d.,]+%?$|^-$|^[×x]?[\d.]+$/.test(String(r[i]))));
  const line = (r: string[]) =>
    '| ' + r.map((c, i) => (numeric[i] ? (c ?? '').padStart(widths[i]) : (c ?? '').padEnd(widths[i]))).join(' | ') + ' |';
  const rule = '|' + widths.map((w, i) => (numeric[i] ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|') + '|';
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join('\n');
}

/** 12345.6 → "12,346"; keeps tables readable at a glance. */
export const int = (n: number): string => Math.round(n).toLocaleString('en-US');
export const fixed = (n: number, digits = 1): string => n.toFixed(digits);

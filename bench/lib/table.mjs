// Aligned plain-text tables in Markdown pipe syntax: readable in a terminal, pasteable into docs.
// Bench and demo support; cells are strings, `align` holds 'l' or 'r' per column.

export function formatTable(headers, rows, align = []) {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const cell = (text, c) => {
    const s = String(text ?? '');
    return align[c] === 'r' ? s.padStart(widths[c]) : s.padEnd(widths[c]);
  };
  const line = (cells) => `| ${cells.map(cell).join(' | ')} |`;
  const rule = `|${widths.map((w, c) => (align[c] === 'r' ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

/** Fixed-point with thousands separators: fmt(1234.5, 1) -> "1,234.5". */
export function fmt(x, digits = 0) {
  if (x == null || !Number.isFinite(x)) return '-';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Three significant digits for ratios and times spanning decades. */
export function sig(x) {
  if (x == null || !Number.isFinite(x)) return '-';
  if (x === 0) return '0';
  const d = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(x))));
  return fmt(x, Math.min(d, 4));
}

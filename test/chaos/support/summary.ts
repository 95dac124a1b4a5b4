// The suite's closing table: per scenario, what was injected and what survived.

export interface ScenarioRow {
  scenario: string;
  /** What was injected, e.g. `10 SIGKILL` or `412 cloud faults`. */
  faults: string;
  survived: boolean;
  batchesLost: number;
  batchesDoubled: number;
  tagsWronglyRemoved: number;
  seconds: number;
}

/** Renders rows as a fixed-width text table. */
export function renderSummary(rows: readonly ScenarioRow[]): string {
  const header = ['scenario', 'faults injected', 'survived', 'batches lost', 'batches doubled', 'tags wrongly removed', 'seconds'];
  const body = rows.map((r) => [
    r.scenario,
    r.faults,
    r.survived ? 'yes' : 'NO',
    String(r.batchesLost),
    String(r.batchesDoubled),
    String(r.tagsWronglyRemoved),
    r.seconds.toFixed(0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

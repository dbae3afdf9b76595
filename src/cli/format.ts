import type { Reconciliation } from '../core/reconcile.js';

/** Renders rows as an aligned text table (number cells right-aligned). */
export function table(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  const render = (row: readonly (string | number)[]) =>
    row
      .map((cell, column) => {
        const width = widths[column] ?? 0;
        return typeof cell === 'number' ? String(cell).padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return [render(headers), render(widths.map((w) => '-'.repeat(w))), ...rows.map(render)].join('\n');
}

/** The reconciliation as two tables and a verdict, for people (days with no events at all omitted). */
export function formatReconciliation(reconciliation: Reconciliation): string {
  const arrival = table(
    ['arrival day', 'source lines', 'valid', 'quarantined', 'objects set aside', 'balanced'],
    reconciliation.arrivalDays
      .filter((r) => r.source_lines > 0 || r.objects_set_aside > 0 || !r.balanced)
      .map((r) => [
        r.day,
        r.source_lines,
        r.valid,
        r.quarantined,
        r.objects_set_aside === 0 ? 0 : `${r.objects_set_aside} (${r.bytes_set_aside} bytes)`,
        r.balanced ? 'yes' : 'NO',
      ]),
  );
  const { snapshot } = reconciliation;
  const folded =
    snapshot === undefined
      ? undefined
      : table(
          [
            'valid lines',
            'folded into snapshots',
            `arrived after ${snapshot.through_hour ?? 'start'}`,
            'balanced',
          ],
          [[snapshot.valid, snapshot.folded, snapshot.pending, snapshot.balanced ? 'yes' : 'NO']],
        );
  const events = table(
    [
      'event day',
      'valid',
      'on time',
      'by sync',
      'late, not synced',
      'duplicates',
      'filtered',
      'out of range',
      'pending',
      'balanced',
    ],
    reconciliation.eventDays
      .filter((r) => r.valid > 0 || !r.balanced)
      .map((r) => [
        r.day,
        r.valid,
        r.on_time,
        r.synced,
        r.late_not_synced,
        r.duplicates,
        r.filtered,
        r.outside_range,
        r.pending,
        r.balanced ? 'yes' : 'NO',
      ]),
  );
  const verdict =
    reconciliation.problems.length === 0
      ? 'reconciliation: balanced'
      : `reconciliation: ${reconciliation.problems.length} PROBLEM(S)\n  ${reconciliation.problems.join('\n  ')}`;
  return `${arrival}\n\n${folded ?? events}\n\n${verdict}`;
}

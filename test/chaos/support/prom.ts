// Reads Prometheus text exposition: samples of one metric, summed by one label across replicas.

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** The samples of `name` (exact name, no suffix) in an exposition text. */
export function samples(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const close = line.lastIndexOf('}');
    const labelText = line.startsWith(`${name}{`) ? line.slice(name.length + 1, close) : '';
    const value = Number(line.slice(close >= 0 ? close + 1 : name.length).trim().split(' ')[0]);
    const labels: Record<string, string> = {};
    for (const m of labelText.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1] ?? ''] = (m[2] ?? '').replace(/\\(.)/g, '$1');
    out.push({ labels, value });
  }
  return out;
}

/** Sums `name` over every text (one per replica), grouped by `label`, keeping samples `where` accepts; zeros dropped. */
export function sumBy(
  texts: readonly string[],
  name: string,
  label: string,
  where: (labels: Record<string, string>) => boolean = () => true,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const text of texts) {
    for (const s of samples(text, name)) {
      if (!where(s.labels)) continue;
      const key = s.labels[label] ?? '';
      out[key] = (out[key] ?? 0) + s.value;
    }
  }
  for (const [k, v] of Object.entries(out)) if (v === 0) delete out[k];
  return out;
}

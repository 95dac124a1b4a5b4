// Maps a field path inside a parsed YAML document to a 1-based line and column; formats paths.
import { isAlias, isMap, isPair, isScalar, isSeq } from 'yaml';
import type { Document, LineCounter, Node } from 'yaml';

export type PathSegment = string | number;

/** Where a finding points. */
export interface Position {
  readonly line: number;
  readonly column: number;
}

/** Finds positions of paths in one document. */
export interface Locator {
  /** Position of the value at `path`; with `key: true` the position of its key. Missing paths fall back to the nearest ancestor's key. */
  locate(path: readonly PathSegment[], options?: { key?: boolean }): Position;
}

/** `spec.remove.keys[2]`, `spec.selector.tags["a.b"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z0-9_:-]+$/.test(seg)) out += out.length === 0 ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** A locator for documents without text (inline JSON): every position is 0:0. */
export const NO_POSITION: Locator = { locate: () => ({ line: 0, column: 0 }) };

/** A locator over a yaml Document parsed with `lineCounter`. */
export function yamlLocator(doc: Document, lineCounter: LineCounter): Locator {
  const pos = (node: { range?: unknown } | null | undefined): Position | undefined => {
    const range = node?.range;
    if (!Array.isArray(range) || typeof range[0] !== 'number') return undefined;
    const p = lineCounter.linePos(range[0]);
    return { line: p.line, column: p.col };
  };
  const docStart: Position = pos(doc.contents as Node | null) ?? pos(doc as unknown as { range?: unknown }) ?? { line: 1, column: 1 };

  return {
    locate(path, options = {}) {
      let node: unknown = doc.contents;
      let best: Position = docStart;
      for (const [i, seg] of path.entries()) {
        if (isAlias(node)) node = node.resolve(doc);
        const last = i === path.length - 1;
        if (isMap(node)) {
          const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
          if (!pair) return best;
          const keyPos = pos(pair.key as Node) ?? best;
          if (last && options.key) return keyPos;
          best = keyPos;
          node = pair.value;
          if (node === null || node === undefined) return keyPos;
        } else if (isSeq(node) && typeof seg === 'number') {
          const item: unknown = node.items[seg];
          if (item === undefined) return best;
          node = item;
          best = pos(item as Node) ?? best;
        } else {
          return best;
        }
      }
      if (isAlias(node)) return pos(node) ?? best;
      return pos(node as Node) ?? best;
    },
  };
}

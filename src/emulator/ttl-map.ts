// A map whose entries expire after a fixed TTL; used for signature nonces and ClientToken results.
// Entries are kept in insertion order, so pruning pops expired ones from the front in O(expired).

interface Entry<V> {
  value: V;
  expiresAt: number;
}

/** Fixed-TTL map with amortised O(1) pruning. The TTL is fixed per instance so expiry follows insertion order. */
export class TtlMap<V> {
  private readonly entries = new Map<string, Entry<V>>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  set(key: string, value: V): void {
    this.prune();
    this.entries.delete(key); // re-insert at the back so insertion order stays expiry order
    this.entries.set(key, { value, expiresAt: this.now() + this.ttlMs });
  }

  clear(): void {
    this.entries.clear();
  }

  private prune(): void {
    const now = this.now();
    for (const [key, e] of this.entries) {
      if (e.expiresAt > now) break;
      this.entries.delete(key);
    }
  }
}

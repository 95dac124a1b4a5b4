// The Redis topology and the health of each of its masters as a gauge, read at scrape time.
import { Gauge, type Registry } from 'prom-client';

/** What the gauge shows for one node. */
export interface RedisNodeSample {
  topology: 'standalone' | 'cluster' | 'sentinel';
  /** `host:port` of a master (or of the one server). */
  node: string;
  role: string;
  ok: boolean;
}

/**
 * Registers `tagwarden_redis_node_up{topology, node, role}`: 1 for a master that answers PING, 0 for one that does
 * not. The series are rebuilt at each scrape, so a node gone from the topology (a failed-over master) disappears
 * instead of lingering. The node set is bounded by the size of the cluster.
 */
export function registerRedisNodeGauge(registry: Registry, read: () => Promise<readonly RedisNodeSample[]>): Gauge<'topology' | 'node' | 'role'> {
  return new Gauge({
    name: 'tagwarden_redis_node_up',
    help: 'Redis masters this replica uses: 1 when the node answers PING, 0 when not (labels: topology, node, role)',
    labelNames: ['topology', 'node', 'role'] as const,
    registers: [registry],
    async collect() {
      const samples = await read().catch(() => []);
      this.reset();
      for (const s of samples) this.set({ topology: s.topology, node: s.node, role: s.role }, s.ok ? 1 : 0);
    },
  });
}

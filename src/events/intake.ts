// The HTTP side of events: parse a delivery, decide per event, record new ones atomically (deduplicated on
// source + id), and make sure each touched region's coalescing window is scheduled. Answers only once the
// events are in Redis, so a delivery that fails here is retried by EventBridge and nothing is lost.
import type { Queue } from 'bullmq';
import type { Logger } from '../logging/index.js';
import type { Metrics } from '../metrics/index.js';
import { TagwardenError } from '../errors.js';
import { callerAccessKeyId, interpretEvent, type InterpretOptions } from './actiontrail.js';
import { parseDelivery } from './cloudevents.js';
import type { EventStore, PendingEvent, Scope } from './store.js';

export interface EventIntakeOptions {
  store: EventStore;
  /** The queue of coalescing windows (one job per scope and generation). */
  windows: Queue;
  /** How long events of one region are gathered before they are read and planned together. */
  windowMs: number;
  /** How long a seen event is remembered (covers EventBridge's one day of retries). */
  dedupTtlSeconds: number;
  maxEventsPerRequest: number;
  interpret: Omit<InterpretOptions, 'nowMs' | 'ownAccessKeys'>;
  /** True when some loaded policy covers the scope (else the event is acknowledged, not acted on). */
  covers(scope: Scope): boolean;
  metrics: Metrics;
  logger: Logger;
  now(): Date;
}

/** The answer to one delivery. */
export interface EventsAnswer {
  received: number;
  /** New events that named connections to check. */
  accepted: number;
  /** Acknowledged without action (other events, own calls, failed calls, regions no policy covers). */
  ignored: number;
  /** Seen before (same source and id): acknowledged, not acted on again. */
  duplicates: number;
}

/** Job data of one coalescing window. */
export interface WindowJob {
  v: 1;
  account: string;
  region: string;
  gen: number;
}

/** The jobId of a window: one per scope and generation, whoever schedules it. */
export function windowJobId(scope: Scope, gen: number): string {
  return `evw-${scope.account}-${scope.region}-${gen}`.replace(/[^A-Za-z0-9_-]/g, '_');
}

export function createEventIntake(options: EventIntakeOptions) {
  const { metrics } = options;
  return {
    /** Handles one delivery body; throws PAYLOAD_INVALID naming the fields of any bad event. */
    async accept(body: unknown): Promise<EventsAnswer> {
      let events;
      try {
        events = parseDelivery(body, { maxEvents: options.maxEventsPerRequest });
      } catch (err) {
        metrics.eventsRefused.inc();
        throw err;
      }
      const nowMs = options.now().getTime();
      // One read for the delivery: which callers' keys are ours (recorded by whichever replica signed with them).
      const callers = events.map(callerAccessKeyId).filter((k): k is string => k !== undefined);
      const ownAccessKeys = callers.length > 0 ? await options.store.ownKeys(callers) : new Set<string>();
      const problems: string[] = [];
      const acted: PendingEvent[] = [];
      const ignored: string[] = [];
      events.forEach((event, i) => {
        const at = events.length === 1 && !Array.isArray(body) ? 'event' : `events[${i}]`;
        const meaning = interpretEvent(event, at, { ...options.interpret, ownAccessKeys, nowMs });
        if (meaning.kind === 'invalid') problems.push(...meaning.problems);
        else if (meaning.kind === 'ignore') ignored.push(meaning.reason);
        else {
          const scope = { account: meaning.account, region: meaning.region };
          if (!options.covers(scope)) ignored.push('no_policy');
          else acted.push({ source: event.source, id: event.id, scope, resourceIds: meaning.resourceIds, timeMs: meaning.timeMs });
        }
      });
      if (problems.length > 0) {
        metrics.eventsRefused.inc();
        throw new TagwardenError('PAYLOAD_INVALID', `invalid events: ${problems.join('; ')}`, { details: { problems: problems.slice(0, 20) } });
      }
      metrics.eventsReceived.inc(events.length);
      for (const reason of ignored) metrics.eventsIgnored.inc({ reason });
      let accepted = 0;
      if (acted.length > 0) {
        const { fresh, generations } = await options.store.accept(acted, options.dedupTtlSeconds);
        accepted = fresh.filter(Boolean).length;
        // Every touched scope's current window is (re)scheduled, duplicates included: a delivery retried after
        // a crash between recording and scheduling schedules it then. The jobId makes this idempotent.
        await options.windows.addBulk(
          [...generations.values()].map(({ scope, gen }) => ({
            name: 'window',
            data: { v: 1, account: scope.account, region: scope.region, gen } satisfies WindowJob,
            opts: {
              jobId: windowJobId(scope, gen),
              delay: options.windowMs,
              attempts: 8,
              backoff: { type: 'exponential', delay: 500 },
              removeOnComplete: { age: 3600, count: 10_000 },
              removeOnFail: { age: 7 * 86_400 },
            },
          })),
        );
        metrics.eventsActed.inc(accepted);
        metrics.eventsDuplicate.inc(acted.length - accepted);
      }
      const answer = { received: events.length, accepted, ignored: ignored.length, duplicates: acted.length - accepted };
      options.logger.debug('events accepted', answer);
      return answer;
    },
  };
}

export type EventIntake = ReturnType<typeof createEventIntake>;

import {
  type CloudTrailClient,
  type Event,
  type LookupAttributeKey,
  LookupEventsCommand,
} from '@aws-sdk/client-cloudtrail';
import type { Recorder } from '../../core/cases.js';
import type { CredentialState } from '../../core/credentials.js';
import { type Artifact, type EvidenceStore, evidenceJson } from '../../core/evidence.js';

export interface CollectActivityDeps {
  cloudtrail: CloudTrailClient;
  evidence: Pick<EvidenceStore, 'put'>;
  recorder: Recorder;
  /** How far back to look (CREDENTIAL_ACTIVITY_DAYS; the event history keeps 90 days). */
  days: number;
  /** Stop after this many events (CREDENTIAL_ACTIVITY_MAX_EVENTS); the summary then says truncated. */
  maxEvents: number;
  /** Stop paging after this long, so the step ends inside its timeout with what it has. */
  budgetMs: number;
  now: () => Date;
  clock: () => number;
  sleep: (ms: number) => Promise<void>;
}

export interface Lookup {
  attribute: LookupAttributeKey;
  value: string;
  events: number;
  pages: number;
  truncated: boolean;
}

export interface ActivityOutcome {
  status: 'succeeded';
  detail: string;
  region: string;
  window: { start: string; end: string };
  events: number;
  truncated: boolean;
  lookups: Lookup[];
  artifacts: Artifact[];
}

/** LookupEvents answers two requests per second per account and Region: one call every 500 ms. */
export const lookupIntervalMs = 500;

const tally = (values: (string | undefined)[]) => {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v ?? '(none)'] = (counts[v ?? '(none)'] ?? 0) + 1;
  return Object.fromEntries(
    Object.entries(counts)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 100),
  );
};

/**
 * Collects what the principal did in the last N days from the account's CloudTrail event history, in
 * the finding's Region: every event signed with the finding's access key and, for an IAM user, every
 * event of the user. Stores the events exactly as CloudTrail returned them (`activity/cloudtrail-
 * events.jsonl`, oldest first) and a summary (`activity/summary.json`), both locked and hashed.
 * The event history holds management events only; data events live in a trail's S3 bucket.
 */
export async function collectActivity(
  state: CredentialState,
  deps: CollectActivityDeps,
): Promise<ActivityOutcome> {
  const c = state.case;
  const end = deps.now();
  const start = new Date(end.getTime() - deps.days * 86_400_000);
  const started = deps.clock();
  const wanted: { attribute: LookupAttributeKey; value: string }[] = [];
  if (c.principal.accessKeyId) wanted.push({ attribute: 'AccessKeyId', value: c.principal.accessKeyId });
  if (c.principal.type === 'IAMUser' && c.principal.name)
    wanted.push({ attribute: 'Username', value: c.principal.name });

  const events = new Map<string, Event>();
  const lookups: Lookup[] = [];
  let calls = 0;
  for (const { attribute, value } of wanted) {
    const lookup: Lookup = { attribute, value, events: 0, pages: 0, truncated: false };
    lookups.push(lookup);
    let NextToken: string | undefined;
    do {
      if (events.size >= deps.maxEvents || deps.clock() - started > deps.budgetMs) {
        lookup.truncated = true;
        break;
      }
      if (calls++ > 0) await deps.sleep(lookupIntervalMs);
      const page = await deps.cloudtrail.send(
        new LookupEventsCommand({
          LookupAttributes: [{ AttributeKey: attribute, AttributeValue: value }],
          StartTime: start,
          EndTime: end,
          MaxResults: 50,
          NextToken,
        }),
      );
      lookup.pages++;
      for (const e of page.Events ?? []) {
        lookup.events++;
        if (e.EventId && events.size < deps.maxEvents) events.set(e.EventId, e);
      }
      NextToken = page.NextToken;
    } while (NextToken);
  }

  const ordered = [...events.values()].sort(
    (a, b) =>
      (a.EventTime?.getTime() ?? 0) - (b.EventTime?.getTime() ?? 0) ||
      (a.EventId ?? '').localeCompare(b.EventId ?? ''),
  );
  const records = ordered.map(
    (e) => e.CloudTrailEvent ?? JSON.stringify({ eventID: e.EventId, eventName: e.EventName }),
  );
  const parsed = records.map((r) => {
    try {
      return JSON.parse(r) as {
        sourceIPAddress?: string;
        eventSource?: string;
        errorCode?: string;
        awsRegion?: string;
      };
    } catch {
      return {};
    }
  });
  const truncated = lookups.some((l) => l.truncated);
  const eventsArtifact = await deps.evidence.put(
    deps.recorder,
    'activity/cloudtrail-events.jsonl',
    records.map((r) => `${r}\n`).join(''),
    { contentType: 'application/x-ndjson' },
  );
  const summaryArtifact = await deps.evidence.put(
    deps.recorder,
    'activity/summary.json',
    evidenceJson({
      caseId: c.caseId,
      principal: c.principal,
      accountId: c.accountId,
      region: c.region,
      window: { start: start.toISOString(), end: end.toISOString() },
      source: 'CloudTrail event history (LookupEvents): management events of this Region',
      lookups,
      events: ordered.length,
      truncated,
      first: ordered[0]?.EventTime?.toISOString() ?? null,
      last: ordered.at(-1)?.EventTime?.toISOString() ?? null,
      byEventName: tally(ordered.map((e) => e.EventName)),
      byEventSource: tally(parsed.map((p) => p.eventSource)),
      bySourceIp: tally(parsed.map((p) => p.sourceIPAddress)),
      denied: parsed.filter((p) => p.errorCode !== undefined).length,
    }),
    { contentType: 'application/json' },
  );
  return {
    status: 'succeeded',
    detail: `${ordered.length} event(s) from ${start.toISOString()} to ${end.toISOString()}${truncated ? ' (truncated)' : ''}`,
    region: c.region,
    window: { start: start.toISOString(), end: end.toISOString() },
    events: ordered.length,
    truncated,
    lookups,
    artifacts: [eventsArtifact, summaryArtifact],
  };
}

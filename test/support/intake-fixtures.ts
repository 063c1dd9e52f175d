import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BatchUpdateFindingsCommand, SecurityHubClient } from '@aws-sdk/client-securityhub';
import {
  BatchWriteCommand,
  DynamoDBDocumentClient,
  PutCommand,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import type { Case } from '../../functions/core/case.js';
import { CaseStore, Recorder } from '../../functions/core/cases.js';
import { EvidenceStore, evidenceJson } from '../../functions/core/evidence.js';
import type { Assessment } from '../../functions/core/plan.js';
import { defaultPolicyText, parseResponsePolicy } from '../../functions/core/policy.js';
import type { IntakeDeps } from '../../functions/forensics/intake-finding/intake-finding.js';
import type { IntakeConfig, IntakeSettings } from '../../functions/forensics/intake-finding/normalise.js';

/**
 * The third-party events in `../shared/fixtures/real-events` (beside the repository), read as they are
 * on disk. A missing folder fails the run: those events are the point of the intake tests.
 */
export const realEventsDir = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../../shared/fixtures/real-events',
);

export function realEventFiles(): string[] {
  if (!existsSync(realEventsDir)) {
    throw new Error(`The real-event fixtures are missing: expected them in ${realEventsDir}`);
  }
  const files = readdirSync(realEventsDir).filter((f) => f.endsWith('.json'));
  if (files.length === 0) throw new Error(`No real-event fixtures in ${realEventsDir}`);
  return files.sort();
}

export function readRealEvent(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(resolve(realEventsDir, file), 'utf8')) as Record<string, unknown>;
}

/**
 * A copy of a `get-findings` finding whose source redacted the account to `id`, given a real account,
 * as the demo does before it starts a case. Only `AccountId` changes; the redacted ARNs are not read.
 */
export function withAccount(finding: Record<string, unknown>, accountId: string): Record<string, unknown> {
  return { ...structuredClone(finding), AccountId: accountId };
}

export const homeAccountId = '111122223333';
export const homeRegion = 'eu-west-1';
export const table = 'cordon-test-cases';
export const bucket = 'cordon-test-evidence';
export const lock = { mode: 'GOVERNANCE', days: 1 } as const;
export const now = new Date('2026-11-27T20:10:03.123Z');
export const executionArn = 'arn:aws:states:eu-west-1:111122223333:execution:cordon-forensics-test:run-1';

/** The `dev` stage's parameters in serverless.yml: low threshold, sample findings accepted. */
export const devConfig: IntakeConfig = {
  CORDON_ACCOUNT_ID: homeAccountId,
  AWS_REGION: homeRegion,
  MIN_SEVERITY: 1,
  ACCEPT_SAMPLE_FINDINGS: true,
  ACCEPT_SECURITYHUB_IMPORTED: false,
  SECURITYHUB_ACTION_ID: 'ForensicTriageAction',
  RESPONSE_POLICY: parseResponsePolicy(defaultPolicyText),
};

/** The defaults every other stage gets. */
export const productionConfig: IntakeConfig = {
  ...devConfig,
  MIN_SEVERITY: 7,
  ACCEPT_SAMPLE_FINDINGS: false,
};

export function settingsOf(config: Omit<IntakeConfig, 'RESPONSE_POLICY'>): IntakeSettings {
  return {
    homeAccountId: config.CORDON_ACCOUNT_ID,
    homeRegion: config.AWS_REGION,
    minSeverity: config.MIN_SEVERITY,
    acceptSampleFindings: config.ACCEPT_SAMPLE_FINDINGS,
    acceptSecurityHubImported: config.ACCEPT_SECURITYHUB_IMPORTED,
    securityHubActionId: config.SECURITYHUB_ACTION_ID,
  };
}

export const ddbMock = mockClient(DynamoDBDocumentClient);
export const s3Mock = mockClient(S3Client);
export const eventsMock = mockClient(EventBridgeClient);
export const securityHubMock = mockClient(SecurityHubClient);

/** AWS answers every write; a test that needs another answer overrides one command. */
export function answerEverything(): void {
  ddbMock.reset();
  s3Mock.reset();
  ddbMock.on(TransactWriteCommand).resolves({ $metadata: { requestId: 'ddb-tx-1' } });
  ddbMock.on(PutCommand).resolves({ $metadata: { requestId: 'ddb-put-1' } });
  ddbMock.on(BatchWriteCommand).resolves({ $metadata: { requestId: 'ddb-batch-1' } });
  s3Mock.on(PutObjectCommand).resolves({ VersionId: 'v1', $metadata: { requestId: 's3-put-1' } });
  eventsMock.reset();
  eventsMock.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'event-1' }] });
  securityHubMock.reset();
  securityHubMock
    .on(BatchUpdateFindingsCommand)
    .resolves({ ProcessedFindings: [], UnprocessedFindings: [], $metadata: { requestId: 'sh-1' } });
}

/** Intake wired to the real case store, evidence store and recorder, over the mocked clients. */
export function intakeDeps(config: IntakeConfig = devConfig): IntakeDeps {
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ region: homeRegion }));
  const cases = new CaseStore(ddb, table, () => now);
  const evidence = new EvidenceStore(new S3Client({ region: homeRegion }), bucket, lock, () => now);
  return {
    cases,
    evidence,
    recorder: (caseId, step) => new Recorder(cases, caseId, step, () => now),
    config,
    now: () => now,
    events: new EventBridgeClient({ region: homeRegion }),
    assess: async (c) => assessmentOf(c.instanceId),
    securityHub: {
      client: (region) => new SecurityHubClient({ region }),
      updatedBy: 'cordon-test',
    },
  };
}

/** The two items `CaseStore.open` must write in one transaction, spelt out independently of it. */
export function expectedOpenTransaction(c: Case) {
  const instanceKey = `INSTANCE#${c.accountId}#${c.region}#${c.instanceId}`;
  return {
    TransactItems: [
      {
        Put: {
          TableName: table,
          Item: { pk: instanceKey, sk: 'OPEN', caseId: c.caseId, openedAt: c.openedAt },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      {
        Put: {
          TableName: table,
          Item: {
            pk: `CASE#${c.caseId}`,
            sk: 'CASE',
            ...c,
            instanceKey,
            status: 'open',
            updatedAt: now.toISOString(),
            findingIds: c.trigger.findingId ? [c.trigger.findingId] : [],
            changes: {},
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
    ],
  };
}

/** The locked, checksummed, create-only write of `trigger.json` holding the event as received. */
export function expectedTriggerPut(caseId: string, event: unknown) {
  const body = evidenceJson(event);
  const digest = createHash('sha256').update(body).digest();
  return {
    Bucket: bucket,
    Key: `cases/${caseId}/trigger.json`,
    Body: body,
    ContentType: 'application/json',
    ChecksumAlgorithm: 'SHA256' as const,
    ChecksumSHA256: digest.toString('base64'),
    IfNoneMatch: '*',
    ObjectLockMode: lock.mode,
    ObjectLockRetainUntilDate: new Date(now.getTime() + lock.days * 86_400_000),
    Metadata: { 'sha256-hex': digest.toString('hex') },
  };
}

/** How many calls the mocked clients received in all: zero is what a refusal must leave. */
export function callsSent(): number {
  return (
    ddbMock.calls().length +
    s3Mock.calls().length +
    eventsMock.calls().length +
    securityHubMock.calls().length
  );
}

/** Every timeline event Intake wrote (the timeline is written in batches), in the order written. */
export function timelineItems(): Record<string, unknown>[] {
  return ddbMock
    .commandCalls(BatchWriteCommand)
    .flatMap((c) => Object.values(c.args[0].input.RequestItems ?? {}).flat())
    .map((r) => (r as { PutRequest: { Item: Record<string, unknown> } }).PutRequest.Item);
}

/** A first look at the instance that chose containment first (functions/core/plan.ts). */
export function assessmentOf(instanceId: string): Assessment {
  return {
    plan: {
      order: 'contain-first',
      memory: 'capture',
      reason: 'SSM manages the instance; VPC endpoints keep SSM and S3 reachable under isolation',
      platform: 'linux',
      ssmManaged: true,
      ssmSurvivesIsolation: true,
    },
    instance: {
      instanceId,
      vpcId: 'vpc-0abc1234',
      vpcEndpoints: [],
      enis: [],
      volumes: [],
      targetGroups: [],
      classicLoadBalancers: [],
    },
    unavailable: [],
  };
}

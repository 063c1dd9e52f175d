/**
 * Task doubles typed by the real steps: each function key maps to what its logic returns, so a double
 * whose answer drifts from the step's output fails the type check instead of letting a workflow test
 * route on a shape the real step never produces. The answers below are those of a clean run, declared
 * with the step's type so that a field the step does not return fails too (an answer written inline in
 * a test is checked for what it lacks or gets wrong, not for what it adds: TypeScript does not check a
 * contextually typed function's returned literal for extra fields).
 */
import type { CredentialCase } from '../../functions/core/credentials.js';
import type { Artifact } from '../../functions/core/evidence.js';
import { summarise } from '../../functions/core/outcome.js';
import type { ContainOrder } from '../../functions/core/state.js';
import type { collectActivity } from '../../functions/credentials/collect-activity/collect-activity.js';
import type { credentialArchive } from '../../functions/credentials/credential-archive/credential-archive.js';
import type { credentialIntake } from '../../functions/credentials/credential-intake/credential-intake.js';
import type { credentialNotify } from '../../functions/credentials/credential-notify/credential-notify.js';
import type { deactivateAccessKey } from '../../functions/credentials/deactivate-access-key/deactivate-access-key.js';
import type { quarantinePrincipal } from '../../functions/credentials/quarantine-principal/quarantine-principal.js';
import type { revokeSessions } from '../../functions/credentials/revoke-sessions/revoke-sessions.js';
import type { startInstanceResponse } from '../../functions/credentials/start-instance-response/start-instance-response.js';
import type { archiveEvidence } from '../../functions/forensics/archive-evidence/archive-evidence.js';
import type { captureMemory } from '../../functions/forensics/capture-memory/capture-memory.js';
import type { checkMemory } from '../../functions/forensics/check-memory/check-memory.js';
import type { checkSnapshots } from '../../functions/forensics/check-snapshots/check-snapshots.js';
import type { holdTrigger } from '../../functions/forensics/hold-trigger/hold-trigger.js';
import type { intakeFinding } from '../../functions/forensics/intake-finding/intake-finding.js';
import type { isolateInstance } from '../../functions/forensics/isolate-instance/isolate-instance.js';
import {
  composeMessage,
  type NotifyInput,
  type notifyOutcome,
} from '../../functions/forensics/notify-outcome/notify-outcome.js';
import type { protectInstance } from '../../functions/forensics/protect-instance/protect-instance.js';
import type { requestApproval } from '../../functions/forensics/request-approval/request-approval.js';
import type { revokeCredentials } from '../../functions/forensics/revoke-credentials/revoke-credentials.js';
import type { snapshotVolumes } from '../../functions/forensics/snapshot-volumes/snapshot-volumes.js';
import type { triageInstance } from '../../functions/forensics/triage-instance/triage-instance.js';
import type { verifyMemory } from '../../functions/forensics/verify-memory/verify-memory.js';
import type { releaseInstance } from '../../functions/release/release-instance/release-instance.js';
import type { TaskHandler } from '../../scripts/local/runner.js';
import { sampleCase } from '../support/core-fakes.js';
import { userCredentialCase } from '../support/playbooks-fixtures.js';

type ResultOf<F extends (...args: never[]) => Promise<unknown>> = Awaited<ReturnType<F>>;

/** What each function's logic returns, by its `functions:` key in serverless.yml. */
export interface StepResults {
  'intake-finding': ResultOf<typeof intakeFinding>;
  'hold-trigger': ResultOf<typeof holdTrigger>;
  'triage-instance': ResultOf<typeof triageInstance>;
  'protect-instance': ResultOf<typeof protectInstance>;
  'isolate-instance': ResultOf<typeof isolateInstance>;
  'revoke-credentials': ResultOf<typeof revokeCredentials>;
  'snapshot-volumes': ResultOf<typeof snapshotVolumes>;
  'check-snapshots': ResultOf<typeof checkSnapshots>;
  'capture-memory': ResultOf<typeof captureMemory>;
  'check-memory': ResultOf<typeof checkMemory>;
  'verify-memory': ResultOf<typeof verifyMemory>;
  'archive-evidence': ResultOf<typeof archiveEvidence>;
  'notify-outcome': ResultOf<typeof notifyOutcome>;
  'request-approval': ResultOf<typeof requestApproval>;
  'release-instance': ResultOf<typeof releaseInstance>;
  'credential-intake': ResultOf<typeof credentialIntake>;
  'deactivate-access-key': ResultOf<typeof deactivateAccessKey>;
  'quarantine-principal': ResultOf<typeof quarantinePrincipal>;
  'revoke-sessions': ResultOf<typeof revokeSessions>;
  'start-instance-response': ResultOf<typeof startInstanceResponse>;
  'collect-activity': ResultOf<typeof collectActivity>;
  'credential-archive': ResultOf<typeof credentialArchive>;
  'credential-notify': ResultOf<typeof credentialNotify>;
}
export type StepKey = keyof StepResults;

/** A double for one step: whatever it does with the state it is given, it answers as the step does. */
export type Double<K extends StepKey> = (state: unknown) => Promise<StepResults[K]>;
export type Doubles = { [K in StepKey]?: Double<K> };

/** The local runner's handlers: the doubles of a run, each later set replacing the earlier's. */
export function handlersOf(...sets: Doubles[]): Record<string, TaskHandler> {
  return Object.assign({}, ...sets);
}

const at = '2026-11-27T20:15:00.000Z';
const instanceId = sampleCase.instanceId;
const vpcId = 'vpc-0123456789abcdef0';
const eniId = 'eni-0123456789abcdef0';

function artifact(name: string, caseId: string = sampleCase.caseId): Artifact {
  return {
    key: `cases/${caseId}/${name}`,
    versionId: 'v1',
    bytes: 1,
    sha256: 'a'.repeat(64),
    contentType: 'application/json',
  };
}

/** Intake opened the case but took no look at the instance: Triage chooses the plan. */
export const accepted: StepResults['intake-finding'] = {
  intake: { decision: 'accepted', reason: 'GuardDuty finding', caseId: sampleCase.caseId },
  case: sampleCase,
};

/** Intake opened the case and its first look at the instance chose `order` (functions/core/plan.ts). */
export function looked(order: ContainOrder): StepResults['intake-finding'] {
  return {
    ...accepted,
    assessment: {
      plan: {
        order,
        memory: 'capture',
        reason: 'first look',
        platform: 'linux',
        ssmManaged: true,
        ssmSurvivesIsolation: order === 'contain-first',
      },
      instance: {
        instanceId,
        vpcId,
        vpcEndpoints: [],
        enis: [],
        volumes: [],
        targetGroups: [],
        classicLoadBalancers: [],
      },
      unavailable: [],
    },
  };
}

export function triaged(order: ContainOrder): StepResults['triage-instance'] {
  return {
    plan: {
      order,
      memory: 'capture',
      reason: 'test plan',
      platform: 'linux',
      ssmManaged: true,
      ssmSurvivesIsolation: order === 'contain-first',
    },
    instance: {
      instanceId,
      state: 'running',
      vpcId,
      platform: 'linux',
      volumes: [{ volumeId: 'vol-0123456789abcdef0', deviceName: '/dev/xvda', deleteOnTermination: true }],
      enis: [
        {
          networkInterfaceId: eniId,
          subnetId: 'subnet-0123456789abcdef0',
          vpcId,
          groups: ['sg-0123456789abcdef0'],
          privateIps: ['10.0.1.5'],
          ipv6: [],
        },
      ],
      targetGroups: [],
      classicLoadBalancers: [],
      vpcEndpoints: [],
    },
    unavailable: [],
    artifacts: [artifact('triage.json')],
  };
}

export const protectedInstance: StepResults['protect-instance'] = {
  instanceId,
  attributes: [{ name: 'disableApiTermination', original: false, now: true }],
  volumes: [{ volumeId: 'vol-0123456789abcdef0', originalDeleteOnTermination: true }],
  targetGroups: [],
  classicLoadBalancers: [],
  unavailable: [],
  done: ['instance read', 'instance tagged with the case'],
};

export const isolated: StepResults['isolate-instance'] = {
  instanceId,
  groups: [{ vpcId, conversionGroupId: 'sg-00000000000000001', isolationGroupId: 'sg-00000000000000002' }],
  enis: [
    {
      networkInterfaceId: eniId,
      originalGroups: ['sg-0123456789abcdef0'],
      isolationGroupId: 'sg-00000000000000002',
    },
  ],
  elasticIps: [],
  naclEntries: [],
  waitedSeconds: 60,
  ssmEgress: false,
  verified: true,
  unavailable: [],
  warnings: [],
  done: ['read network interfaces', 'isolation group applied', 'isolation verified'],
  finishedAt: '2026-11-27T20:16:30.000Z',
};

export const revoked: StepResults['revoke-credentials'] = {
  instanceId,
  scope: 'instance',
  cutoff: at,
  revokedRoles: ['web-role'],
  profile: { replaced: false },
  imdsv2: 'required by Cordon',
  done: ['deny on the role'],
  finishedAt: '2026-11-27T20:16:30.000Z',
};

/** Snapshot Volumes' and Check Snapshots' answer: the snapshots, and whether to wait and look again. */
export function disk(done: boolean, waitSeconds: number): StepResults['check-snapshots'] {
  return {
    done,
    waitSeconds,
    attempt: 1,
    startedAt: at,
    deadline: '2026-11-27T22:15:00.000Z',
    snapshots: [
      {
        volumeId: 'vol-0123456789abcdef0',
        snapshotId: 'snap-0123456789abcdef0',
        state: done ? 'completed' : 'pending',
      },
    ],
  };
}

const capture = {
  platform: 'linux',
  tool: { name: 'avml', key: 'tools/avml', sha256: 'b'.repeat(64) },
  document: { name: 'cordon-capture-memory', version: '1' },
  commandId: 'command-1',
  instanceId,
  bucket: 'cordon-evidence',
  key: `cases/${sampleCase.caseId}/memory/image.lime`,
  reportKey: `cases/${sampleCase.caseId}/memory/capture-report.json`,
  sessionKey: `sessions/${sampleCase.caseId}/memory-upload.env`,
  uploadId: 'upload-1',
  partSize: 64 * 1024 * 1024,
  maxParts: 10_000,
  compress: false,
  startedAt: at,
  deadline: '2026-11-27T21:15:00.000Z',
  waitSeconds: 30,
  attempt: 1,
} as const;

/** What Capture Memory starts and Check Memory answers until the upload is complete. */
export const memoryRunning: Extract<StepResults['check-memory'], { status: 'running' }> = {
  ...capture,
  status: 'running',
};

export const memoryUploaded: StepResults['check-memory'] = {
  ...capture,
  status: 'uploaded',
  versionId: 'v1',
  bytes: 1024,
  hostSha256: 'c'.repeat(64),
  parts: 1,
  report: artifact('memory/capture-report.json'),
};

export const memoryVerified: StepResults['verify-memory'] = {
  status: 'verified',
  artifact: artifact('memory/image.lime'),
  report: artifact('memory/capture-report.json'),
  hostSha256: 'c'.repeat(64),
  s3ChecksumSha256: 'ZmFrZQ==-1',
  bytes: 1024,
  parts: 1,
  partSize: capture.partSize,
  wholeImageSha256: 'recomputed',
  lock: { mode: 'COMPLIANCE', retainUntil: '2027-11-27T20:15:00.000Z', legalHold: 'ON' },
  platform: capture.platform,
  tool: capture.tool,
  document: capture.document,
  commandId: capture.commandId,
};

export function archived(
  outcome: StepResults['archive-evidence']['outcome'],
): StepResults['archive-evidence'] {
  return {
    outcome,
    manifest: artifact('manifest.json'),
    signature: artifact('manifest.sig'),
    artifacts: [artifact('triage.json')],
  };
}

export function notified(
  outcome: StepResults['notify-outcome']['outcome'],
  steps: StepResults['notify-outcome']['steps'] = [],
): StepResults['notify-outcome'] {
  return { outcome, messageId: 'message-1', steps };
}

export const released: StepResults['release-instance'] = {
  caseId: sampleCase.caseId,
  instanceId,
  restored: [],
  unchanged: [],
  notes: [],
};

/**
 * Every forensic step answering as in a clean run of the given plan: Intake's first look chose `look`
 * (none when undefined: Triage chooses), Triage chose `order`. Check Snapshots reports done on its
 * `snapshotChecks`th call, Check Memory uploaded on its `memoryChecks`th. Archive and Notify decide the
 * outcome from the state they receive as the real steps do (`summarise`, `composeMessage`), so that
 * the execution ends as a real one would: Case Failed for a failed case, Case Closed otherwise.
 */
export function forensicDoubles(
  options: { look?: ContainOrder; order?: ContainOrder; snapshotChecks?: number; memoryChecks?: number } = {},
): Doubles {
  const { look, order = 'contain-first', snapshotChecks = 1, memoryChecks = 1 } = options;
  let snapshotCalls = 0;
  let memoryCalls = 0;
  return {
    'intake-finding': async () => (look ? looked(look) : accepted),
    'hold-trigger': async () => ({ held: true, messageId: 'held-1', redrive: 'cordon redrive' }),
    'triage-instance': async () => triaged(order),
    'protect-instance': async () => protectedInstance,
    'isolate-instance': async () => isolated,
    'revoke-credentials': async () => revoked,
    'snapshot-volumes': async () => disk(false, 15),
    'check-snapshots': async () => disk(++snapshotCalls >= snapshotChecks, 30),
    'capture-memory': async () => memoryRunning,
    'check-memory': async () => (++memoryCalls >= memoryChecks ? memoryUploaded : memoryRunning),
    'verify-memory': async () => memoryVerified,
    'archive-evidence': async (state) => archived(summarise(state as NotifyInput).outcome),
    'notify-outcome': async (state) => {
      const message = composeMessage(state as NotifyInput);
      return notified(message.outcome, message.steps);
    },
    'release-instance': async () => released,
    'request-approval': async () => ({ caseId: sampleCase.caseId, deadline: '2026-11-27T21:15:00.000Z' }),
  };
}

/** A credential step that changed what it was meant to. */
export const succeeded = (detail: string): StepResults['deactivate-access-key'] => ({
  status: 'succeeded',
  detail,
});

/** Every credential step answering as in a clean run for `theCase`. */
export function credentialDoubles(theCase: CredentialCase = userCredentialCase): Doubles {
  const { caseId } = theCase;
  return {
    'credential-intake': async () => ({
      intake: { decision: 'accepted', reason: 'ACCEPTED', caseId },
      case: theCase,
    }),
    'deactivate-access-key': async () => succeeded('deactivated'),
    'quarantine-principal': async () => succeeded('quarantined'),
    'revoke-sessions': async () => succeeded('revoked'),
    'start-instance-response': async () => succeeded('started'),
    'collect-activity': async () => ({
      status: 'succeeded',
      detail: '3 events',
      region: 'us-east-1',
      window: { start: '2026-11-17T20:15:00.000Z', end: at },
      events: 3,
      truncated: false,
      lookups: [
        { attribute: 'AccessKeyId', value: 'AKIAEXAMPLEALICE0001', events: 3, pages: 1, truncated: false },
      ],
      artifacts: [artifact('activity/cloudtrail.json', caseId)],
    }),
    'credential-archive': async () => ({
      outcome: 'completed',
      manifest: artifact('manifest.json', caseId),
      signature: artifact('manifest.sig', caseId),
      artifacts: [],
    }),
    'credential-notify': async () => notified('completed'),
  };
}

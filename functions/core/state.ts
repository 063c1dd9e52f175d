/**
 * The workflow's state as it moves through statemachines/forensics.asl.yml. Each step's result lands
 * at the path named here (the ASL's ResultPath); each step reads only the parts it needs.
 *
 *   $.intake       Intake Finding           IntakeResult (with $.case when accepted, and $.assessment
 *                                           when the first look at the instance chose the plan)
 *   $.held         Hold Trigger             HoldResult, when Intake could not open a case ($.holdError
 *                                           when the trigger could not be held either)
 *   $.triage       Triage Instance          TriageResult
 *   $.assessment   Picture For Containment  $.triage, when Intake took no look or memory comes first
 *   $.containment  Contain                  { protect, isolate, revoke }: each branch's
 *                                           { status: 'succeeded', result } (ProtectResult, IsolateResult,
 *                                           RevokeResult) or { status: 'failed', error }
 *   $.response     After Containment        { loadBalancers, disk }: BranchResult each. Leave Load
 *                  Balancers' ProtectResult is at $.response.loadBalancers.result. Inside the snapshot
 *                  branch $.disk is a DiskState, which `Snapshots Taken` puts at $.response.disk.snapshots,
 *                  so the snapshot list is $.response.disk.snapshots.snapshots.
 *   $.memory       Capture/Check/Verify     MemoryState (Memory Failed moves $.memoryError into it)
 *   $.archive      Archive Evidence         ArchiveResult ($.archiveError when it failed)
 *   $.error        Intake, Triage           { Error, Cause }, from the Catch of the step that failed
 *   $.notify       Notify Outcome           NotifyResult
 */
import type { Case, Outcome } from './case.js';
import type { TriageResult } from './containment.js';
import type { Artifact } from './evidence.js';
import type { Assessment } from './plan.js';

export type Decision = 'accepted' | 'rejected' | 'duplicate';

export interface IntakeResult {
  intake: { decision: Decision; reason: string; caseId?: string };
  case?: Case;
  /** The plan and what containment needs of the instance (functions/core/plan.ts). */
  assessment?: Assessment;
}

export type { TriageResult };
export type Plan = TriageResult['plan'];
export type MemoryPlan = Plan['memory'];
export type ContainOrder = Plan['order'];
export type EniSnapshot = TriageResult['instance']['enis'][number];

export interface BranchResult {
  status: 'succeeded' | 'failed';
  error?: { Error: string; Cause: string };
  [detail: string]: unknown;
}

export interface ArchiveResult {
  outcome: Outcome;
  manifest: Artifact;
  signature: Artifact;
  artifacts: Artifact[];
}

export interface NotifyResult {
  outcome: Outcome;
  messageId?: string;
}

/** How Cordon left an EBS snapshot lock (`LockSnapshot`, compliance mode, a duration in days). */
export interface SnapshotLock {
  status: 'locked' | 'failed';
  mode: 'compliance';
  durationDays: number;
  /** EC2's `LockState` (`compliance-cooloff`, `compliance`, ...) as LockSnapshot answered. */
  lockState?: string;
  /** Set once the snapshot has completed: a lock taken while pending starts counting at completion. */
  expiresOn?: string;
  detail?: string;
}

/** A copy of a snapshot in the forensic account, re-encrypted under that account's key. */
export interface SnapshotCopy {
  accountId: string;
  region: string;
  kmsKeyArn: string;
  status: 'pending' | 'completed' | 'failed';
  snapshotId?: string;
  startedAt?: string;
  completedSeenAt?: string;
  detail?: string;
  lock?: SnapshotLock;
}

/** One snapshot of the instance's volumes, as Cordon last saw it. */
export interface SnapshotRecord {
  volumeId: string;
  deviceName?: string;
  snapshotId: string;
  sizeGiB?: number;
  encrypted?: boolean;
  /** EC2's snapshot state: `pending`, `completed`, `error`, `recoverable`, `recovering`. */
  state: string;
  progress?: string;
  startTime?: string;
  /** When Cordon first saw the snapshot completed: EC2 publishes no completion time. */
  completedSeenAt?: string;
  lock?: SnapshotLock;
  copy?: SnapshotCopy;
}

/**
 * `$.disk` inside the snapshot branch: Snapshot Volumes creates it, Check Snapshots returns the next one
 * until `done`. The ASL's Wait reads `waitSeconds`. When done, `artifact` is `snapshots.json`.
 */
export interface DiskState {
  done: boolean;
  waitSeconds: number;
  attempt: number;
  startedAt: string;
  /** After this, an unfinished snapshot is a SnapshotTimeoutError (SNAPSHOT_BUDGET_SECONDS). */
  deadline: string;
  snapshots: SnapshotRecord[];
  /** Why there is nothing to wait for, or what did not go to plan without failing the branch. */
  note?: string;
  artifact?: Artifact;
}

export type MemoryPlatform = 'linux' | 'windows';

/** What Capture Memory started and what Check and Verify need to follow it up. */
export interface MemoryCapture {
  platform: MemoryPlatform;
  tool: { name: 'avml' | 'winpmem'; key: string; sha256: string };
  /** The SSM document and the exact version (and content hash) the command ran. */
  document: { name: string; version: string; hash?: string };
  commandId: string;
  instanceId: string;
  bucket: string;
  /** The image's key in the evidence bucket; `reportKey` is the host's report next to it. */
  key: string;
  reportKey: string;
  /** The tools-bucket object holding the host's short-lived upload credentials; deleted when done. */
  sessionKey: string;
  uploadId: string;
  partSize: number;
  maxParts: number;
  compress: boolean;
  startedAt: string;
  /** After this, a capture still running is a MemoryCaptureTimeoutError (MEMORY_BUDGET_SECONDS). */
  deadline: string;
  waitSeconds: number;
  attempt: number;
}

export interface MemorySkipped {
  status: 'skipped';
  reason: string;
}
export interface MemoryRunning extends MemoryCapture {
  status: 'running';
}
/** The host finished and Cordon completed the multipart upload; not yet verified. */
export interface MemoryUploaded extends MemoryCapture {
  status: 'uploaded';
  versionId: string;
  bytes: number;
  hostSha256: string;
  parts: number;
  /** The host's report (`memory/capture-report.json`) as stored. */
  report: Artifact;
}
/** The image is in the evidence bucket, its size and checksums agree with the host's report, and it is locked. */
export interface MemoryVerified {
  status: 'verified';
  /** The memory image: `artifact.sha256` is the whole-image SHA-256 (see `wholeImageSha256`). */
  artifact: Artifact;
  report: Artifact;
  hostSha256: string;
  /** S3's composite checksum of the parts (base64 SHA-256 of the part digests). */
  s3ChecksumSha256: string;
  bytes: number;
  parts: number;
  partSize: number;
  /**
   * `recomputed`: Cordon read the image back and hashed it. `host-reported`: the image was too large to
   * read back in one Lambda run; the whole-image hash is the host's, and every byte is covered by a
   * per-part SHA-256 that S3 checked on arrival and that the composite checksum ties together.
   */
  wholeImageSha256: 'recomputed' | 'host-reported';
  lock: { mode: string; retainUntil: string; legalHold: 'ON' | 'OFF' };
  platform: MemoryPlatform;
  tool: MemoryCapture['tool'];
  document: MemoryCapture['document'];
  commandId: string;
}
export interface MemoryFailed {
  status: 'failed';
  error: { Error: string; Cause: string };
}
/** `$.memory`: what became of the memory capture. Archive lists `artifact` and `report` when verified. */
export type MemoryState = MemorySkipped | MemoryRunning | MemoryUploaded | MemoryVerified | MemoryFailed;

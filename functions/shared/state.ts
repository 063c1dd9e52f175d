/**
 * The workflow's state as it moves through statemachines/forensics.asl.yml. Each step's result lands
 * at the path named here (the ASL's ResultPath); each step reads only the parts it needs.
 *
 *   $.intake     Intake Finding          IntakeResult (with $.case when accepted)
 *   $.triage     Triage Instance         TriageResult
 *   $.protect    Protect Instance        ProtectResult
 *   $.response   Contain And Snapshot    { contain: BranchResult, disk: BranchResult }
 *   $.memory     Capture/Check/Verify    MemoryState
 *   $.archive    Archive Evidence        ArchiveResult
 *   $.error      any Catch               { Error, Cause }
 *   $.notify     Notify Outcome          NotifyResult
 */
import type { Case, Outcome } from './case.js';
import type { Artifact } from './evidence.js';

export type Decision = 'accepted' | 'rejected' | 'duplicate';

export interface IntakeResult {
  intake: { decision: Decision; reason: string; caseId?: string };
  case?: Case;
}

export type MemoryPlan = 'capture' | 'skip';
export type ContainOrder = 'contain-first' | 'capture-first';

export interface Plan {
  order: ContainOrder;
  memory: MemoryPlan;
  /** Why this plan: shown on the timeline and in the notification. */
  reason: string;
  platform: 'linux' | 'windows' | 'unknown';
  ssmManaged: boolean | 'unknown';
  /** Whether the SSM agent can still reach SSM (and S3) once the isolation group is in place. */
  ssmSurvivesIsolation: boolean;
}

export interface EniSnapshot {
  networkInterfaceId: string;
  subnetId: string;
  vpcId: string;
  groups: string[];
  privateIps: string[];
  ipv6: string[];
  attachmentId?: string;
  deviceIndex?: number;
  association?: { publicIp: string; allocationId?: string; associationId?: string };
}

export interface TriageResult {
  plan: Plan;
  instance: {
    instanceId: string;
    state: string;
    vpcId?: string;
    subnetId?: string;
    imageId?: string;
    instanceType?: string;
    launchTime?: string;
    platform: 'linux' | 'windows' | 'unknown';
    volumes: { volumeId: string; deviceName: string; sizeGiB?: number; deleteOnTermination: boolean }[];
    enis: EniSnapshot[];
    instanceProfile?: { arn: string; associationId: string; roleNames: string[] };
    autoScalingGroup?: string;
    targetGroups: { arn: string; port?: number; id: string }[];
    classicLoadBalancers: string[];
    memoryGiB?: number;
    /** VPC endpoints in the instance's VPC: what SSM and S3 traffic can still reach once isolated. */
    vpcEndpoints: {
      id: string;
      serviceName: string;
      type: 'Interface' | 'Gateway' | string;
      groups: string[];
      prefixListId?: string;
    }[];
  };
  /** APIs that the account (or the emulator) did not answer: recorded, not fatal. */
  unavailable: { api: string; reason: string }[];
  artifacts: Artifact[];
}

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

import type { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import type { EC2Client, Instance } from '@aws-sdk/client-ec2';
import type { ElasticLoadBalancingClient } from '@aws-sdk/client-elastic-load-balancing';
import type { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import type { IAMClient } from '@aws-sdk/client-iam';
import type { z } from 'zod';
import type { CaseRecord, Recorder } from '../cases.js';
import { changesOf } from '../containment.js';

/** How one restore ended: put back, found as it was before containment, or left as it is and why. */
export type Outcome = 'restored' | 'unchanged' | { note: string };

/**
 * Runs one restore under its label, for the release's report: a restore that throws is reported as not
 * restored, and the others go on.
 */
export type Attempt = (label: string, work: () => Promise<Outcome>) => Promise<void>;

/** Clients for the case's account and region: what every action's restore may call. */
export interface ReleaseClients {
  ec2: EC2Client;
  iam: IAMClient;
  autoscaling: AutoScalingClient;
  elbv2: ElasticLoadBalancingV2Client;
  elb: ElasticLoadBalancingClient;
}

/** What Release gives each action's restore. */
export interface ReleaseContext {
  clients: ReleaseClients;
  recorder: Recorder;
  now: () => Date;
  /** The case being released. */
  record: CaseRecord;
  /** The instance as it is now; undefined once it is terminated or gone. */
  instance: Instance | undefined;
  /** The release's own instant, saved on the case before anything changes (`releaseProgressSchema`). */
  cutoff: string;
  quarantineProfileName: string;
  attempt: Attempt;
  /** The outcome of a restore that needs the instance, once the instance is gone. */
  gone: Outcome;
}

/**
 * One containment action: what one containment step changes on an instance, the record of it that the
 * step saves on the case before it changes anything, and how Release restores it. Listed, in Release's
 * order, in `functions/core/containment-actions.ts`.
 */
export interface ContainmentAction<T = unknown> {
  /** The key under which the step saves its changes on the case (`changeKeys`). */
  readonly key: string;
  /** The step (its `functions:` key in serverless.yml) that applies the action and saves its changes. */
  readonly step: string;
  /** What the action changes, in a few words. */
  readonly description: string;
  /** The shape of the saved changes, checked when they are read back. */
  readonly schema: z.ZodType;
  /** The action's saved changes on a case; a record that does not parse counts as none. */
  read(record: Pick<CaseRecord, 'changes'> | undefined): T | undefined;
  /**
   * Puts back what the changes record, comparing each with the live state first, each restore under
   * `release.attempt`, so that a release run again restores only what still differs.
   */
  restore(changes: T, release: ReleaseContext): Promise<void>;
}

/** An action from its parts, reading its changes with its own key and schema. */
export function containmentAction<S extends z.ZodType>(
  parts: Omit<ContainmentAction<z.infer<S>>, 'read' | 'schema'> & { schema: S },
): ContainmentAction<z.infer<S>> & { readonly schema: S } {
  return { ...parts, read: (record) => changesOf(record, parts.key, parts.schema) };
}

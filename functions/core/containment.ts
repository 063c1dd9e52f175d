/**
 * What the containment steps and Release share: the ids and Triage's picture they read, the keys under
 * which each step saves its changes on the case (`cases.saveChanges`), and how a step reports its
 * progress. What each step changes, and how Release restores it, is its containment action
 * (`functions/core/actions/`, listed in `containment-actions.ts`).
 */
import { z } from 'zod';
import { caseSchema, instanceIdSchema, ipSchema } from './case.js';
import type { CaseRecord } from './cases.js';
import {
  AwsServiceError,
  AwsThrottlingError,
  ContainmentError,
  CordonError,
  normaliseError,
} from './errors.js';
import type { Artifact } from './evidence.js';
import { oneLine, safeTextSchema } from './text.js';

/** EC2 ids as EC2 issues them: a prefix and 8 or 17 hex digits. Anything else is refused at the edge. */
const ec2Id = (prefix: string) =>
  z.string().regex(new RegExp(`^${prefix}-(?:[0-9a-f]{8}|[0-9a-f]{17})$`), `not a ${prefix} id`);

export const groupIdSchema = ec2Id('sg');
export const eniIdSchema = ec2Id('eni');
export const volumeIdSchema = ec2Id('vol');
export const subnetIdSchema = ec2Id('subnet');
export const vpcIdSchema = ec2Id('vpc');
export const allocationIdSchema = ec2Id('eipalloc');
export const eipAssociationIdSchema = ec2Id('eipassoc');
export const networkAclIdSchema = ec2Id('acl');
export const prefixListIdSchema = ec2Id('pl');
export const profileAssociationIdSchema = ec2Id('iip-assoc');
export const roleNameSchema = z.string().regex(/^[\w+=,.@-]{1,64}$/, 'not an IAM role name');
export const instanceProfileArnSchema = z
  .string()
  .regex(/^arn:aws[a-z-]*:iam::\d{12}:instance-profile\/[\w+=,.@/-]{1,512}$/, 'not an instance profile ARN');
export const targetGroupArnSchema = z
  .string()
  .regex(
    /^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup\/[A-Za-z0-9-]{1,32}\/[0-9a-f]{16}$/,
    'not a target group ARN',
  );
export const classicLoadBalancerNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9-]{1,32}$/, 'not a Classic Load Balancer name');
/**
 * Auto Scaling group names may hold almost any character, tab and line breaks included (the API's own
 * pattern): refusing those would let whoever names a group keep its instances out of containment. The
 * name is only ever passed back to the Auto Scaling API and written through `oneLine`.
 */
export const autoScalingGroupNameSchema = z
  .string()
  .min(1)
  .max(255)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters the API refuses are what is refused
  .regex(/^[^\u0000-\u0008\u000b\u000c\u000e-\u001f]*$/, 'not an Auto Scaling group name');
export const deviceNameSchema = z.string().regex(/^[A-Za-z0-9/]{1,32}$/, 'not a device name');
export const availabilityZoneSchema = z.string().regex(/^[a-z0-9-]{1,32}$|^all$/, 'not an availability zone');

export const targetSchema = z.object({
  arn: targetGroupArnSchema,
  /** An instance id, or a private IP address for `ip` target groups. */
  id: z.union([instanceIdSchema, ipSchema]),
  port: z.number().int().min(1).max(65535).optional(),
  availabilityZone: availabilityZoneSchema.optional(),
});
export type Target = z.infer<typeof targetSchema>;

const volumeSchema = z.object({
  volumeId: volumeIdSchema,
  deviceName: deviceNameSchema,
  sizeGiB: z.number().optional(),
  deleteOnTermination: z.boolean(),
});

/** An interface as it was before Cordon touched it: the groups Release must put back. */
const eniSnapshotSchema = z.object({
  networkInterfaceId: eniIdSchema,
  subnetId: subnetIdSchema,
  vpcId: vpcIdSchema,
  groups: z.array(groupIdSchema),
  privateIps: z.array(z.string()),
  ipv6: z.array(z.string()),
  attachmentId: z.string().optional(),
  deviceIndex: z.number().int().optional(),
  association: z
    .object({
      publicIp: z.string(),
      allocationId: z.string().optional(),
      associationId: z.string().optional(),
    })
    .optional(),
});

const planSchema = z.object({
  order: z.enum(['contain-first', 'capture-first']),
  memory: z.enum(['capture', 'skip']),
  /** Why this plan: shown on the timeline and in the notification. */
  reason: safeTextSchema.pipe(z.string().max(1000)),
  platform: z.enum(['linux', 'windows', 'unknown']),
  ssmManaged: z.union([z.boolean(), z.literal('unknown')]),
  /** Whether the SSM agent can still reach SSM (and S3) once the isolation group is in place. */
  ssmSurvivesIsolation: z.boolean(),
});

const pictureSchema = z.object({
  instanceId: instanceIdSchema,
  state: z.string(),
  vpcId: vpcIdSchema.optional(),
  subnetId: subnetIdSchema.optional(),
  imageId: z.string().optional(),
  instanceType: z.string().optional(),
  launchTime: z.string().optional(),
  platform: planSchema.shape.platform,
  volumes: z.array(volumeSchema),
  enis: z.array(eniSnapshotSchema),
  instanceProfile: z
    .object({
      arn: instanceProfileArnSchema,
      associationId: profileAssociationIdSchema,
      roleNames: z.array(roleNameSchema),
    })
    .optional(),
  autoScalingGroup: autoScalingGroupNameSchema.optional(),
  targetGroups: z.array(targetSchema),
  classicLoadBalancers: z.array(classicLoadBalancerNameSchema),
  memoryGiB: z.number().optional(),
  /** VPC endpoints in the instance's VPC: what SSM and S3 traffic can still reach once isolated. */
  vpcEndpoints: z.array(
    z.object({
      id: z.string().regex(/^vpce-[0-9a-f]{8,17}$/),
      serviceName: z.string().regex(/^[a-z0-9.-]{1,200}$/),
      type: z.string().max(32),
      groups: z.array(groupIdSchema),
      prefixListId: prefixListIdSchema.optional(),
    }),
  ),
});

/** What Triage returns (`$.triage`, functions/core/state.ts): the plan and the "before" picture. */
export const triageResultSchema = z.object({
  plan: planSchema,
  instance: pictureSchema,
  /** APIs that the account (or the emulator) did not answer: recorded, not fatal. */
  unavailable: z.array(z.object({ api: z.string(), reason: z.string() })),
  /** Written by Triage itself through the evidence store, whose type they keep; no step parses them. */
  artifacts: z.array(z.custom<Artifact>()),
});
export type TriageResult = z.infer<typeof triageResultSchema>;

/** The parts of Triage's result that containment reads; the rest is dropped when its input is parsed. */
export const triageSchema = z.object({
  plan: planSchema.pick({ order: true, ssmSurvivesIsolation: true, reason: true }).partial({ reason: true }),
  instance: pictureSchema
    .pick({
      instanceId: true,
      vpcId: true,
      volumes: true,
      enis: true,
      instanceProfile: true,
      autoScalingGroup: true,
      targetGroups: true,
      classicLoadBalancers: true,
      vpcEndpoints: true,
    })
    .extend({
      volumes: z.array(volumeSchema.omit({ sizeGiB: true })),
      enis: z.array(
        eniSnapshotSchema.pick({ networkInterfaceId: true, subnetId: true, vpcId: true, groups: true }),
      ),
    }),
});
export type TriagePicture = z.infer<typeof triageSchema>;

/** What Protect, Isolate and Revoke receive from the workflow: the case and Triage's picture. */
export const containInputSchema = z.object({ case: caseSchema, triage: triageSchema });
export type ContainInput = z.infer<typeof containInputSchema>;

/**
 * What Protect receives: the case and, once Triage has run, the load balancers Triage found. On the
 * containment path Protect runs before Triage and reads the instance itself; it runs again after
 * Triage to take the instance out of those load balancers.
 */
export const protectInputSchema = z.object({
  case: caseSchema,
  /**
   * Only put the case on the instance (its `cordon:case-id` tag), nothing of its availability: for a
   * case that gathers evidence without containment, whose snapshots and memory capture IAM grants only
   * on an instance under a case.
   */
  markOnly: z.boolean().optional(),
  triage: z
    .object({
      instance: triageSchema.shape.instance.pick({ targetGroups: true, classicLoadBalancers: true }),
    })
    .optional(),
});
export type ProtectInput = z.infer<typeof protectInputSchema>;

// ---------------------------------------------------------------------------------------------------
// What each step changed lives with its containment action (functions/core/actions/), listed in
// functions/core/containment-actions.ts. Release keeps its own progress here.
// ---------------------------------------------------------------------------------------------------

export const releaseProgressSchema = z.object({
  restored: z.array(z.string()),
  notRestored: z.array(z.string()),
  /**
   * The release's own cutoff, saved before anything changes so that a release run again narrows the
   * containment deny to the same instant: the instance's sessions issued before it stay denied.
   */
  cutoff: z.iso.datetime().optional(),
});

/** The step keys under which each step saves its changes on the case. */
export const changeKeys = {
  protect: 'protect-instance',
  isolate: 'isolate-instance',
  revoke: 'revoke-credentials',
  release: 'release-instance',
} as const;

/**
 * The keys the containment steps save their changes under: every key but Release's own. Each is one
 * containment action's (`functions/core/containment-actions.ts`).
 */
export const containmentKeys: readonly string[] = Object.values(changeKeys).filter(
  (k) => k !== changeKeys.release,
);

/** Reads one step's saved changes from a case record; a record that does not parse counts as none. */
export function changesOf<S extends z.ZodType>(
  record: Pick<CaseRecord, 'changes'> | undefined,
  key: string,
  schema: S,
): z.infer<S> | undefined {
  const raw = record?.changes?.[key];
  if (raw === undefined) return undefined;
  const parsed = schema.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

/** The Cordon groups' names in a VPC: one pair per stage, shared by every case in that VPC. */
export const cordonGroupNames = (stage: string) => ({
  conversion: `cordon-${stage}-untrack`,
  isolation: `cordon-${stage}-isolation`,
});

/** Name of the inline deny Revoke puts on a role: one per case, so cases sharing a role never overwrite each other. */
export const denyPolicyName = (caseId: string) => `cordon-revoke-${caseId}`;
/** Name of the deny on the sessions issued before containment, which outlives a release. */
export const issuedBeforeDenyPolicyName = (caseId: string) => `cordon-revoke-${caseId}-issued-before`;
/**
 * No role session outlives this (a role's maximum session duration is at most 12 hours): a deny on
 * sessions issued before an instant has nothing left to deny this long after it.
 */
export const longestRoleSessionMs = 12 * 3_600_000;

export type Sleep = (ms: number) => Promise<void>;
export const sleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** One change of several made at once (`Progress.together`): its phase, and what it changes within it. */
export interface Change {
  label: string;
  /** Which of the phase's changes this is (a role and policy), when a phase makes several. */
  target?: string;
  work: () => Promise<unknown>;
}

/** What a failed step reports: the phase it stopped in, what it had applied and what it had not. */
export interface Progress {
  readonly done: string[];
  /**
   * Runs one phase; if it throws, the error becomes a named error that says what was and was not done
   * (an AggregateError, for each of its errors).
   */
  phase<T>(label: string, work: () => Promise<T>): Promise<T>;
  /**
   * Makes several changes at once and waits for every one of them to settle, so that nothing is still
   * in flight when the step reports. A phase is done when all its changes are. If any failed, throws
   * one named error that lists every failed change with its error, and what was and was not applied.
   */
  together(changes: readonly Change[]): Promise<void>;
  /**
   * The last phase of a step: everything it recorded is on the case timeline. A lost record fails the
   * step as this phase, so that the failure still says what was applied; it is never listed as pending
   * in another phase's failure.
   */
  recorded(recorder: { flush(): Promise<void> }): Promise<void>;
}

type ForGood = new (message: string, options?: ErrorOptions) => CordonError;

/**
 * Whether trying again later may succeed: throttling, an AWS 5xx, or a failure with no HTTP answer at
 * all (a timeout, a reset connection). An AWS 4xx that is not throttling (a bad parameter, a missing
 * resource, a quota) fails the same way every time, so it is failing for good.
 */
export function isTransient(error: unknown): boolean {
  const e = normaliseError(error);
  if (e instanceof AwsThrottlingError) return true;
  if (!e.retryable) return false;
  // The HTTP status is AWS's, on the error or on the AWS error a Cordon error was made from.
  let status: number | undefined;
  let from = error as { $metadata?: { httpStatusCode?: number }; cause?: unknown } | undefined;
  for (let depth = 0; from && depth < 5; depth++, from = from.cause as typeof from) {
    status ??= from.$metadata?.httpStatusCode;
  }
  return !(status !== undefined && status >= 400 && status < 500);
}

/**
 * Waits for every call to settle, then returns their results or throws: a transient failure first (the
 * retry it earns may clear the others too), else the first. A call that fails never leaves the others
 * still running when the step goes on or reports.
 */
export async function settledAll<T extends readonly unknown[] | []>(
  calls: T,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(calls);
  const failed = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
  if (failed.length) throw failed.find(isTransient) ?? failed[0];
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as {
    -readonly [K in keyof T]: Awaited<T[K]>;
  };
}

/**
 * The class a phase's failure is reported under: throttling and transient AWS failures keep their
 * retryable name, any other AWS failure is `forGood`, and Cordon's own named errors keep theirs.
 */
function reportedAs(error: unknown, forGood: ForGood): ForGood {
  const e = normaliseError(error);
  if (e instanceof AwsThrottlingError) return AwsThrottlingError;
  if (e instanceof AwsServiceError && isTransient(error)) return AwsServiceError;
  if (e instanceof AwsServiceError || e.name === 'AwsAccessDeniedError') return forGood;
  return e.constructor as ForGood;
}

/**
 * Tracks a step's phases so that a failure says what was applied and what was not. Errors the ASL
 * retries (throttling, AWS 5xx) keep their name, so the retry still happens, with the progress added
 * to the message; anything else becomes `forGood` (ContainmentError, RevocationError…) unless it is
 * already one of Cordon's named errors, whose name is kept.
 */
export function progress(step: string, planned: string[], forGood: ForGood = ContainmentError): Progress {
  const done: string[] = [];
  /** What was and was not applied; `failed` is what failed, each with the phase it belongs to. */
  const account = (failed: { phase: string; what: string }[], applied: string[]) => {
    const pending = planned.filter((p) => !done.includes(p) && !failed.some((f) => f.phase === p));
    return (
      `Applied: ${applied.length ? applied.join('; ') : 'nothing'}. ` +
      `Not applied: ${[...failed.map((f) => f.what), ...pending].join('; ')}.`
    );
  };
  const named = (Named: ForGood, message: string, cause: unknown): CordonError => {
    const error = new Named(message, { cause });
    Object.defineProperty(error, 'progressed', { value: true });
    return error;
  };
  return {
    done,
    async phase(label, work) {
      try {
        const out = await work();
        done.push(label);
        return out;
      } catch (thrown) {
        if (thrown instanceof CordonError && (thrown as { progressed?: boolean }).progressed) throw thrown;
        // Several calls of the phase failed (an AggregateError): reported under the one a retry may
        // clear, else the first.
        const error =
          thrown instanceof AggregateError
            ? ((thrown.errors as unknown[]).find(isTransient) ?? thrown.errors[0])
            : thrown;
        const e = normaliseError(error);
        const message = oneLine(
          `${step} stopped at "${label}": ${e.name}: ${e.message}. ` +
            account([{ phase: label, what: label }], done),
          1800,
        );
        throw named(reportedAs(error, forGood), message, error);
      }
    },
    recorded(recorder) {
      return this.phase('actions recorded on the case timeline', () => recorder.flush());
    },
    async together(changes) {
      // Started inside the promise chain, so that one that throws at once still lets the others run.
      const settled = await Promise.allSettled(changes.map((ch) => Promise.resolve().then(ch.work)));
      // A change that failed several ways (an AggregateError of its calls) failed for each of them.
      const failed = changes.flatMap((ch, i) => {
        const s = settled[i];
        if (s?.status !== 'rejected') return [];
        const errors = s.reason instanceof AggregateError ? (s.reason.errors as unknown[]) : [s.reason];
        return errors.map((error) => ({ ch, error }));
      });
      const failedPhases = new Set(failed.map((f) => f.ch.label));
      const partly = changes.filter(
        (ch, i) => failedPhases.has(ch.label) && settled[i]?.status === 'fulfilled',
      );
      for (const label of new Set(changes.map((ch) => ch.label))) {
        if (!failedPhases.has(label)) done.push(label);
      }
      if (!failed.length) return;
      const which = (ch: Change) => (ch.target ? `${ch.label} (${ch.target})` : ch.label);
      // What was and was not applied first, each error after: a message cut short for a notification
      // keeps the account whole.
      // Changes that failed alike (both denies on a full role) share one line.
      const errors = new Map<string, string[]>();
      for (const { ch, error } of failed) {
        const e = normaliseError(error);
        const why = `${e.name}: ${oneLine(e.message, 400)}`;
        const those = errors.get(why) ?? [];
        if (!those.includes(`"${which(ch)}"`)) those.push(`"${which(ch)}"`);
        errors.set(why, those);
      }
      const message = oneLine(
        `${step} stopped at ${[...new Set(failed.map(({ ch }) => `"${which(ch)}"`))].join(', ')}. ` +
          `${account(
            [...new Map(failed.map(({ ch }) => [which(ch), { phase: ch.label, what: which(ch) }])).values()],
            [...done, ...partly.map(which)],
          )} ${[...errors].map(([why, what]) => `${what.join(', ')}: ${why}`).join('; ')}.`,
        1800,
      );
      // One name for all: a retryable one when any failure may pass (the retry re-applies the rest
      // too), else the first failure's.
      const first = failed.find(({ error }) => isTransient(error)) ?? failed[0];
      throw named(reportedAs(first?.error, forGood), message, first?.error);
    },
  };
}

/** An AWS error code, for the few codes a step handles on purpose. */
export function codeOf(error: unknown): string {
  const e = error as { name?: unknown; Code?: unknown };
  return String(e?.Code ?? e?.name ?? '');
}

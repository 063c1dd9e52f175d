import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SNSClient } from '@aws-sdk/client-sns';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { partitionOf } from './case.js';
import { AssumeRoleError, describeError } from './errors.js';
import { functionKeyIn, memberCapabilityOf, memberRoleName } from './member-roles.js';

/** Clients for Cordon's own resources (evidence bucket, cases table, topic, signing key). */
export interface HomeClients {
  s3: S3Client;
  ddb: DynamoDBDocumentClient;
  sns: SNSClient;
  kms: KMSClient;
  sts: STSClient;
  /** The playbooks start the forensic workflow (IDS alerts, exfiltrated instance credentials). */
  sfn: SFNClient;
  /** Case events go to the security account's default bus (functions/core/events.ts). */
  events: EventBridgeClient;
}

export interface ClientSettings {
  homeAccountId: string;
  homeRegion: string;
  /** The prefix of the member roles: `<memberRoleName>-<capability>` (functions/core/member-roles.ts). */
  memberRoleName: string;
  /**
   * The function whose member role to assume (functions/core/member-roles.ts). On Lambda it is read
   * from the function's name; a caller outside Lambda (the CLI) names the function it acts as.
   */
  functionKey?: string;
  /** The SDK's own attempts per call (standard mode: exponential backoff with full jitter). */
  maxAttempts?: number;
  /** A non-AWS endpoint (the emulator): S3 then needs path-style addressing. */
  endpoint?: string;
}

/** Anything with a middleware stack: every AWS SDK v3 client. */
export interface PluggableClient {
  middlewareStack: { add: (...args: never[]) => void };
}
/** Whose credentials a client signs with: Cordon's own role, or the member role assumed for a case. */
export type ClientOrigin =
  | { kind: 'home' }
  | { kind: 'member'; accountId: string; region: string; caseId?: string; assumed: boolean };
type ClientPlugin = (client: PluggableClient, origin: ClientOrigin) => void;
const plugins: ClientPlugin[] = [];

/**
 * Adds a plugin applied to every client Cordon creates from now on (tracing, metering, fault
 * injection in benchmarks). Production code registers none.
 */
export function useClientPlugin(plugin: ClientPlugin): () => void {
  plugins.push(plugin);
  return () => {
    const at = plugins.indexOf(plugin);
    if (at >= 0) plugins.splice(at, 1);
  };
}

/** Applies the registered plugins to a client built elsewhere (the `cordon` CLI's). */
export function plugged<T extends PluggableClient>(client: T, origin: ClientOrigin = { kind: 'home' }): T {
  for (const plugin of plugins) plugin(client, origin);
  return client;
}

/** The configuration every client for a member account is built with (region, retries, credentials). */
export type MemberClientConfig = ReturnType<typeof common> & { credentials?: AwsCredentialIdentityProvider };

/**
 * Builds (once) a client of the given class for the instance's account and region. Steps name the
 * client classes they use, so each function's bundle carries only those SDK clients.
 */
export type MemberClient = <C extends PluggableClient>(Client: new (config: MemberClientConfig) => C) => C;

export type ClientsFor = (target: { accountId: string; region: string; caseId?: string }) => MemberClient;

function common(settings: ClientSettings, region: string) {
  return {
    region,
    maxAttempts: settings.maxAttempts ?? 4,
    retryMode: 'standard' as const,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
  };
}

export function homeClients(settings: ClientSettings): HomeClients {
  const base = common(settings, settings.homeRegion);
  return {
    s3: plugged(new S3Client({ ...base, forcePathStyle: Boolean(settings.endpoint) })),
    ddb: DynamoDBDocumentClient.from(plugged(new DynamoDBClient(base)), {
      marshallOptions: { removeUndefinedValues: true },
    }),
    sns: plugged(new SNSClient(base)),
    kms: plugged(new KMSClient(base)),
    sts: plugged(new STSClient(base)),
    sfn: plugged(new SFNClient(base)),
    events: plugged(new EventBridgeClient(base)),
  };
}

/**
 * Credentials for a member account: the member role assumed from the home account, refreshed five
 * minutes before they expire. The session is named after the case so that CloudTrail in the member
 * account shows which case made each call.
 */
function assumedCredentials(
  sts: STSClient,
  roleArn: string,
  sessionName: string,
): AwsCredentialIdentityProvider {
  let current: AwsCredentialIdentity | undefined;
  return async () => {
    const expiring = current?.expiration && current.expiration.getTime() - Date.now() < 300_000;
    if (current && !expiring) return current;
    try {
      const out = await sts.send(
        new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: sessionName, DurationSeconds: 3600 }),
      );
      const c = out.Credentials;
      if (!c?.AccessKeyId || !c.SecretAccessKey) throw new Error('AssumeRole returned no credentials');
      current = {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.SessionToken,
        expiration: c.Expiration,
      };
      return current;
    } catch (error) {
      const e = describeError(error);
      throw new AssumeRoleError(`Cannot assume ${roleArn}: ${e.name}: ${e.message}`, { cause: error });
    }
  };
}

/**
 * The member role this function assumes: each function has one capability, and each capability its
 * own role, trusted by exactly the functions that need it. A function with none cannot act in a
 * member account at all.
 */
function memberRoleArn(settings: ClientSettings, accountId: string, region: string): string {
  const fn = settings.functionKey ?? functionKeyIn(process.env.AWS_LAMBDA_FUNCTION_NAME);
  const capability = fn === undefined ? undefined : memberCapabilityOf(fn);
  if (!capability) {
    throw new AssumeRoleError(`${fn ?? 'This function'} has no role to act in member account ${accountId}`);
  }
  return `arn:${partitionOf(region)}:iam::${accountId}:role/${memberRoleName(settings.memberRoleName, capability)}`;
}

/**
 * Clients of any class for Cordon's own account, built once each: for the steps that need a client no
 * other step does (so that only their bundles carry it).
 */
export function homeClientFactory(settings: ClientSettings): MemberClient {
  const built = new Map<unknown, PluggableClient>();
  return (Client) => {
    let client = built.get(Client);
    if (!client) {
      client = plugged(new Client(common(settings, settings.homeRegion)));
      built.set(Client, client);
    }
    return client as InstanceType<typeof Client>;
  };
}

/**
 * Clients of any class for Cordon's own account in any region, built once per region and class: for
 * what a service keeps in the region it came from rather than in Cordon's (a finding in Security Hub).
 */
export function homeRegionClientFactory(settings: ClientSettings): (region: string) => MemberClient {
  const byRegion = new Map<string, MemberClient>();
  return (region) => {
    let clients = byRegion.get(region);
    if (!clients) {
      clients = homeClientFactory({ ...settings, homeRegion: region });
      byRegion.set(region, clients);
    }
    return clients;
  };
}

/**
 * The one way steps get clients for an instance's account: Cordon's own credentials at home, the
 * member role elsewhere. Clients are cached per account, region and case for the life of the process.
 */
export function clientsFactory(settings: ClientSettings, sts: STSClient): ClientsFor {
  const cache = new Map<string, MemberClient>();
  return ({ accountId, region, caseId }) => {
    const key = `${accountId}/${region}/${caseId ?? ''}`;
    const hit = cache.get(key);
    if (hit) return hit;
    const config: MemberClientConfig = {
      ...common(settings, region),
      ...(accountId === settings.homeAccountId
        ? {}
        : {
            credentials: assumedCredentials(
              sts,
              memberRoleArn(settings, accountId, region),
              `cordon-${caseId ?? 'session'}`.slice(0, 64),
            ),
          }),
    };
    const built = new Map<unknown, PluggableClient>();
    const member: MemberClient = (Client) => {
      let client = built.get(Client);
      if (!client) {
        client = plugged(new Client(config), {
          kind: 'member',
          accountId,
          region,
          ...(caseId ? { caseId } : {}),
          assumed: accountId !== settings.homeAccountId,
        });
        built.set(Client, client);
      }
      return client as InstanceType<typeof Client>;
    };
    cache.set(key, member);
    return member;
  };
}

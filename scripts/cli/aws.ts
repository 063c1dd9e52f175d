// Types only: each client's package is loaded when first used, because loading all of them takes
// seconds and most commands need three or four.

import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import type { CloudTrailClient } from '@aws-sdk/client-cloudtrail';
import type { EBSClient } from '@aws-sdk/client-ebs';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { GuardDutyClient } from '@aws-sdk/client-guardduty';
import type { IAMClient } from '@aws-sdk/client-iam';
import type { KMSClient } from '@aws-sdk/client-kms';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SecurityHubClient } from '@aws-sdk/client-securityhub';
import type { SFNClient } from '@aws-sdk/client-sfn';
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { STSClient } from '@aws-sdk/client-sts';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { type PluggableClient, plugged } from '../../functions/core/clients.js';
import { CliError, type FailedOperation } from './errors.js';

export interface AwsSettings {
  /** The emulator (or any non-AWS endpoint): every client uses it, S3 path-style. */
  endpoint?: string;
  profile?: string;
  /** The region of the Cordon stack; otherwise the SDK's own resolution (AWS_REGION, the profile). */
  region?: string;
}

/** The region the emulated account uses when none is given. */
export const emulatorRegion = 'us-east-1';

/**
 * The region the environment names, as the AWS CLI reads it: `AWS_REGION`, then `AWS_DEFAULT_REGION`
 * (which the SDK for JavaScript ignores). Undefined when neither is set: the profile's region then.
 */
export function regionFromEnvironment(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined;
}

/** The profile names an AWS config or credentials file defines (`[profile x]`, `[x]`, `[default]`). */
export function profilesIn(text: string, kind: 'config' | 'credentials'): Set<string> {
  const names = new Set<string>();
  for (const line of text.split(/\r?\n/)) {
    const header = /^\s*\[\s*([^\]]+?)\s*\]\s*(?:[#;].*)?$/.exec(line)?.[1];
    if (!header) continue;
    if (kind === 'credentials') names.add(header);
    else if (header === 'default') names.add(header);
    else {
      const named = /^profile\s+(.+)$/.exec(header)?.[1];
      if (named) names.add(named.trim());
    }
  }
  return names;
}

/**
 * Refuses a profile that neither shared file defines, naming it: the SDK would otherwise report only
 * that it found no credentials (or no region), which sends the person looking in the wrong place.
 */
export function checkProfile(profile: string, env: NodeJS.ProcessEnv = process.env): void {
  const configFile = env.AWS_CONFIG_FILE || join(homedir(), '.aws', 'config');
  const credentialsFile = env.AWS_SHARED_CREDENTIALS_FILE || join(homedir(), '.aws', 'credentials');
  const read = (file: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      return '';
    }
  };
  if (profilesIn(read(configFile), 'config').has(profile)) return;
  if (profilesIn(read(credentialsFile), 'credentials').has(profile)) return;
  throw new CliError(
    `The AWS profile ${JSON.stringify(profile)} is not defined in ${configFile} or ${credentialsFile}.`,
    'Check its name (aws configure list-profiles), or create it (aws configure --profile NAME, aws configure sso).',
  );
}

interface Middlewared {
  middlewareStack: {
    add: (
      mw: (
        next: (args: { input: Record<string, unknown> }) => Promise<unknown>,
        context: { clientName?: string; commandName?: string },
      ) => (args: { input: Record<string, unknown> }) => Promise<unknown>,
      options: { step: 'initialize'; name: string; override: boolean },
    ) => void;
  };
}

/**
 * Tags every failed call with the operation it was, so that "access denied" can name the permission
 * that is missing even when AWS's message does not (S3's never does).
 */
function annotate<C>(client: C): C {
  (client as unknown as Middlewared).middlewareStack.add(
    (next, context) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        if (error && typeof error === 'object') {
          const op: FailedOperation = {
            service: context.clientName ?? 'unknown',
            command: context.commandName ?? 'unknown',
            input: args.input ?? {},
          };
          Object.defineProperty(error, '$cordonOperation', {
            value: op,
            enumerable: false,
            configurable: true,
          });
        }
        throw error;
      }
    },
    { step: 'initialize', name: 'cordonOperationName', override: true },
  );
  return client;
}

export interface RegionalClients {
  ec2: EC2Client;
  ssm: SSMClient;
  guardduty: GuardDutyClient;
  cloudtrail: CloudTrailClient;
  securityhub: SecurityHubClient;
}

/**
 * Builds the CLI's AWS clients on demand, one per service and region, all with the same credentials,
 * endpoint and retry settings. Against AWS the SDK resolves credentials and region as usual; against
 * an endpoint the region defaults to us-east-1 and, when none are set, the credentials to test/test.
 */
export class Aws {
  private readonly cache = new Map<string, unknown>();
  private resolvedRegion: string | undefined;

  constructor(readonly settings: AwsSettings) {}

  get endpoint(): string | undefined {
    return this.settings.endpoint;
  }

  private profileChecked = false;

  private base(region: string | undefined) {
    const s = this.settings;
    const profile = s.profile ?? process.env.AWS_PROFILE;
    if (profile && !this.profileChecked) {
      checkProfile(profile);
      this.profileChecked = true;
    }
    const noCredentials = !process.env.AWS_ACCESS_KEY_ID && !s.profile && !process.env.AWS_PROFILE;
    return {
      ...(region ? { region } : {}),
      ...(s.profile ? { profile: s.profile } : {}),
      // The emulator answers a missing operation with a 500; retrying it only slows the answer.
      maxAttempts: s.endpoint ? 1 : 5,
      retryMode: 'standard' as const,
      ...(s.endpoint ? { endpoint: s.endpoint } : {}),
      ...(s.endpoint && noCredentials
        ? { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }
        : {}),
    };
  }

  private async client<C extends PluggableClient>(
    kind: string,
    region: string | undefined,
    make: (config: ReturnType<Aws['base']>) => Promise<C>,
  ): Promise<C> {
    const key = `${kind}/${region ?? ''}`;
    let client = this.cache.get(key) as Promise<C> | undefined;
    if (!client) {
      client = make(this.base(region)).then((c) => annotate(plugged(c)));
      this.cache.set(key, client);
    }
    return client;
  }

  private readonly built = new Map<unknown, Map<string, unknown>>();
  /**
   * A client of a class the caller has loaded, built with the same settings, for a library that is
   * handed a synchronous factory (`ec2For`) rather than awaiting one.
   */
  clientOf<C extends PluggableClient>(Client: new (config: ReturnType<Aws['base']>) => C, region: string): C {
    let byRegion = this.built.get(Client);
    if (!byRegion) {
      byRegion = new Map();
      this.built.set(Client, byRegion);
    }
    let client = byRegion.get(region) as C | undefined;
    if (!client) {
      client = annotate(plugged(new Client(this.base(region))));
      byRegion.set(region, client);
    }
    return client;
  }

  /**
   * The stack's region, and every call's: `--region`, the emulator's default, `AWS_REGION`,
   * `AWS_DEFAULT_REGION`, then what the SDK resolves from the profile.
   */
  async region(): Promise<string> {
    if (this.resolvedRegion) return this.resolvedRegion;
    const given = this.settings.region ?? (this.settings.endpoint ? emulatorRegion : regionFromEnvironment());
    if (given) {
      this.resolvedRegion = given;
      return given;
    }
    const { STSClient } = await import('@aws-sdk/client-sts');
    const probe = new STSClient(this.base(undefined));
    this.resolvedRegion = await probe.config.region();
    return this.resolvedRegion;
  }

  async s3(): Promise<S3Client> {
    return this.client('s3', await this.region(), async (c) => {
      const { S3Client } = await import('@aws-sdk/client-s3');
      return new S3Client({ ...c, forcePathStyle: Boolean(this.endpoint) });
    });
  }
  async ddb(): Promise<DynamoDBDocumentClient> {
    return this.client('ddb', await this.region(), async (c) => {
      const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
      const { DynamoDBDocumentClient } = await import('@aws-sdk/lib-dynamodb');
      return DynamoDBDocumentClient.from(new DynamoDBClient(c), {
        marshallOptions: { removeUndefinedValues: true },
      });
    });
  }
  async kms(): Promise<KMSClient> {
    return this.client(
      'kms',
      await this.region(),
      async (c) => new (await import('@aws-sdk/client-kms')).KMSClient(c),
    );
  }
  async sfn(): Promise<SFNClient> {
    return this.client(
      'sfn',
      await this.region(),
      async (c) => new (await import('@aws-sdk/client-sfn')).SFNClient(c),
    );
  }
  async cloudformation(): Promise<CloudFormationClient> {
    return this.client(
      'cfn',
      await this.region(),
      async (c) => new (await import('@aws-sdk/client-cloudformation')).CloudFormationClient(c),
    );
  }
  async sts(): Promise<STSClient> {
    return this.client(
      'sts',
      await this.region(),
      async (c) => new (await import('@aws-sdk/client-sts')).STSClient(c),
    );
  }
  async iam(): Promise<IAMClient> {
    return this.client(
      'iam',
      await this.region(),
      async (c) => new (await import('@aws-sdk/client-iam')).IAMClient(c),
    );
  }
  /** The EBS direct APIs, in the region of the snapshots they read. */
  async ebs(region?: string): Promise<EBSClient> {
    const r = region ?? (await this.region());
    return this.client('ebs', r, async (c) => new (await import('@aws-sdk/client-ebs')).EBSClient(c));
  }
  async ec2(region?: string): Promise<EC2Client> {
    const r = region ?? (await this.region());
    return this.client('ec2', r, async (c) => new (await import('@aws-sdk/client-ec2')).EC2Client(c));
  }

  /** The clients doctor uses in each region it checks. */
  async regional(region: string): Promise<RegionalClients> {
    const [ec2, ssm, guardduty, cloudtrail, securityhub] = await Promise.all([
      this.ec2(region),
      this.client('ssm', region, async (c) => new (await import('@aws-sdk/client-ssm')).SSMClient(c)),
      this.client(
        'guardduty',
        region,
        async (c) => new (await import('@aws-sdk/client-guardduty')).GuardDutyClient(c),
      ),
      this.client(
        'cloudtrail',
        region,
        async (c) => new (await import('@aws-sdk/client-cloudtrail')).CloudTrailClient(c),
      ),
      this.client(
        'securityhub',
        region,
        async (c) => new (await import('@aws-sdk/client-securityhub')).SecurityHubClient(c),
      ),
    ]);
    return { ec2, ssm, guardduty, cloudtrail, securityhub };
  }

  private caller: Promise<{ arn: string; account: string }> | undefined;
  /** Who is calling: the ARN recorded as `requestedBy` on manual starts and releases. */
  identity(): Promise<{ arn: string; account: string }> {
    this.caller ??= this.sts().then(async (sts) => {
      const { GetCallerIdentityCommand } = await import('@aws-sdk/client-sts');
      const out = await sts.send(new GetCallerIdentityCommand({}));
      return { arn: out.Arn ?? 'unknown', account: out.Account ?? 'unknown' };
    });
    return this.caller;
  }
}

/**
 * What every playbook script shares: the emulated account (moto) with Cordon's stack in it, the
 * functions' environment, the real handlers called as Lambda calls them, and small seeds (a network,
 * a principal) for the playbooks to act on.
 */
import './quiet.js';
import '../local/polyfills.js';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  AssociateVpcCidrBlockCommand,
  CreateNetworkAclCommand,
  CreateNetworkAclEntryCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeNetworkAclsCommand,
  EC2Client,
  ReplaceNetworkAclAssociationCommand,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { CreateAccessKeyCommand, CreateRoleCommand, CreateUserCommand, IAMClient } from '@aws-sdk/client-iam';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { resetConfig } from '../../functions/core/config.js';
import { resetStepContext } from '../../functions/core/handler.js';
import { type Moto, resetMoto, startMoto } from '../local/moto.js';
import { lambdaContext, sourceHandler, taskScope } from '../local/runner.js';
import { deployLocalStack, type LocalStack, localRegion } from '../local/stack.js';

export const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

export interface PlaybookEnv {
  endpoint: string;
  stack: LocalStack;
  /** The emulator this run started, if it started one; `close` stops it. */
  moto?: Moto;
  close: () => Promise<void>;
}

export interface PlaybookEnvOptions {
  /** An emulator already running; its state is reset and left in place afterwards for inspection. */
  endpoint?: string;
  /** Settings on top of the stage's (for example `POLICY_REVERT_OPEN_INGRESS: 'true'`). */
  env?: Record<string, string>;
  /** Keep what the emulator holds instead of resetting it first. */
  keep?: boolean;
}

/**
 * Starts (or joins) the emulated account, deploys Cordon's resources into it, and points the
 * functions' configuration at it: the same environment serverless.yml gives the functions, with the
 * forensic state machine's ARN for the functions that start it.
 */
export async function playbookEnv(options: PlaybookEnvOptions = {}): Promise<PlaybookEnv> {
  const moto = options.endpoint ? undefined : await startMoto();
  const endpoint = options.endpoint ?? (moto as Moto).endpoint;
  if (options.endpoint && !options.keep) await resetMoto(endpoint);
  const stack = await deployLocalStack(endpoint, 'dev');
  Object.assign(process.env, stack.env, {
    FORENSICS_STATE_MACHINE_ARN: stack.forensicsStateMachineArn,
    ...options.env,
  });
  resetConfig();
  resetStepContext();
  return { endpoint, stack, ...(moto ? { moto } : {}), close: async () => moto?.stop() };
}

/** A client for the emulated account. */
export function emulated<T>(Client: new (config: object) => T, endpoint: string): T {
  return new Client({ endpoint, region: localRegion, credentials, maxAttempts: 1 });
}

/**
 * Calls a function's real handler (the one serverless.yml names for `fn`) as Lambda would
 * (`handler(event, context)`), after the environment is configured.
 */
export async function invoke<T = unknown>(fn: string, event: unknown): Promise<T> {
  const handler = await sourceHandler(fn);
  const call = () => handler(event, lambdaContext(fn)) as Promise<T>;
  // A playbook Lambda runs outside any state machine: its calls are attributed to the function itself.
  if (taskScope.getStore()) return call();
  return taskScope.run({ stateName: fn, executionArn: `local-invoke:${fn}`, fn }, call);
}

/** The messages Cordon published to the alert topic, read from the queue subscribed to it. */
export async function alerts(env: PlaybookEnv): Promise<{ subject?: string; body: string }[]> {
  const sqs = emulated(SQSClient, env.endpoint);
  const found: { subject?: string; body: string }[] = [];
  for (;;) {
    const out = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: env.stack.alertQueueUrl, MaxNumberOfMessages: 10 }),
    );
    if (!out.Messages?.length) return found;
    for (const m of out.Messages) {
      const envelope = JSON.parse(m.Body ?? '{}') as { Subject?: string; Message?: string };
      found.push({
        ...(envelope.Subject ? { subject: envelope.Subject } : {}),
        body: envelope.Message ?? '',
      });
    }
  }
}

export interface SeededNetwork {
  vpcId: string;
  vpcIpv6Cidr?: string;
  subnetIds: [string, string];
  /** The default ACL (subnet A) and a custom one with its own allow rules (subnet B). */
  aclIds: [string, string];
  instanceId: string;
  privateIp: string;
}

/**
 * A dual-stack VPC with two subnets, each on its own network ACL (the VPC's default, and a custom one
 * whose allow rules start at 100), and one instance in the first subnet.
 */
export async function seedNetwork(endpoint: string): Promise<SeededNetwork> {
  const ec2 = emulated(EC2Client, endpoint);
  const vpc = await ec2.send(new CreateVpcCommand({ CidrBlock: '10.60.0.0/16' }));
  const vpcId = vpc.Vpc?.VpcId as string;
  const v6 = await ec2.send(
    new AssociateVpcCidrBlockCommand({ VpcId: vpcId, AmazonProvidedIpv6CidrBlock: true }),
  );
  const a = await ec2.send(
    new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.60.1.0/24', AvailabilityZone: `${localRegion}a` }),
  );
  const b = await ec2.send(
    new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.60.2.0/24', AvailabilityZone: `${localRegion}b` }),
  );
  const subnetIds: [string, string] = [a.Subnet?.SubnetId as string, b.Subnet?.SubnetId as string];
  const acls = await ec2.send(
    new DescribeNetworkAclsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }),
  );
  const defaultAcl = acls.NetworkAcls?.[0];
  const custom = await ec2.send(new CreateNetworkAclCommand({ VpcId: vpcId }));
  const customId = custom.NetworkAcl?.NetworkAclId as string;
  for (const Egress of [false, true]) {
    await ec2.send(
      new CreateNetworkAclEntryCommand({
        NetworkAclId: customId,
        RuleNumber: 100,
        Egress,
        Protocol: '-1',
        RuleAction: 'allow',
        CidrBlock: '0.0.0.0/0',
      }),
    );
    await ec2.send(
      new CreateNetworkAclEntryCommand({
        NetworkAclId: customId,
        RuleNumber: 101,
        Egress,
        Protocol: '-1',
        RuleAction: 'allow',
        Ipv6CidrBlock: '::/0',
      }),
    );
  }
  const association = defaultAcl?.Associations?.find((s) => s.SubnetId === subnetIds[1]);
  await ec2.send(
    new ReplaceNetworkAclAssociationCommand({
      AssociationId: association?.NetworkAclAssociationId,
      NetworkAclId: customId,
    }),
  );
  const run = await ec2.send(
    new RunInstancesCommand({
      ImageId: 'ami-12c6146b',
      InstanceType: 't3.micro',
      MinCount: 1,
      MaxCount: 1,
      SubnetId: subnetIds[0],
    }),
  );
  const instance = run.Instances?.[0];
  const ipv6 = v6.Ipv6CidrBlockAssociation?.Ipv6CidrBlock;
  return {
    vpcId,
    ...(ipv6 ? { vpcIpv6Cidr: ipv6 } : {}),
    subnetIds,
    aclIds: [defaultAcl?.NetworkAclId as string, customId],
    instanceId: instance?.InstanceId as string,
    privateIp: instance?.PrivateIpAddress as string,
  };
}

export interface SeededPrincipals {
  userName: string;
  accessKeyId: string;
  roleName: string;
}

/** An IAM user with an active access key, and a role for instances. */
export async function seedPrincipals(endpoint: string): Promise<SeededPrincipals> {
  const iam = emulated(IAMClient, endpoint);
  const suffix = Math.random().toString(16).slice(2, 8);
  const userName = `dev-alice-${suffix}`;
  await iam.send(new CreateUserCommand({ UserName: userName }));
  const key = await iam.send(new CreateAccessKeyCommand({ UserName: userName }));
  const roleName = `web-role-${suffix}`;
  await iam.send(
    new CreateRoleCommand({
      RoleName: roleName,
      AssumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' },
        ],
      }),
    }),
  );
  return { userName, accessKeyId: key.AccessKey?.AccessKeyId as string, roleName };
}

/** Whether the module at `url` is the script node was asked to run (not a module a test imports). */
export function isMain(url: string): boolean {
  const script = process.argv[1];
  return script !== undefined && url === pathToFileURL(resolve(script)).href;
}

/** Prints a line to stdout. */
export const out = (line = '') => process.stdout.write(`${line}\n`);

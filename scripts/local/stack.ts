import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  CloudFormationClient,
  CreateStackCommand,
  DescribeStacksCommand,
} from '@aws-sdk/client-cloudformation';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import {
  AddRoleToInstanceProfileCommand,
  CreateInstanceProfileCommand,
  CreateRoleCommand,
  IAMClient,
  PutRolePolicyCommand,
} from '@aws-sdk/client-iam';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  CreateBucketCommand,
  PutBucketEncryptionCommand,
  PutBucketVersioningCommand,
  PutObjectLockConfigurationCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { CreateStateMachineCommand, SFNClient } from '@aws-sdk/client-sfn';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { CreateDocumentCommand, SSMClient } from '@aws-sdk/client-ssm';
import { parse } from 'yaml';
import { installStandInTools } from './emulated-ssm-agent.js';
import { loadDefinition, repoRoot } from './runner.js';

/** moto's one account, and the region the local runs use. */
export const localAccountId = '123456789012';
export const localRegion = 'us-east-1';

export interface LocalStack {
  stackName: string;
  env: Record<string, string>;
  bucket: string;
  table: string;
  topicArn: string;
  /** The SQS queue subscribed to the topic: where the local run reads its notifications. */
  alertQueueUrl: string;
  /** Where a rule on the default bus puts Cordon's case events, for the demo to show. */
  eventsQueueUrl?: string;
  signingKeyId: string;
  /** The key investigators sign addenda with (a stack deployed before addenda has none). */
  addendumKeyArn?: string;
  /** The key the evidence bucket encrypts under (SSE-KMS). */
  evidenceKeyArn: string;
  toolsBucket: string;
  /** Where triggers that could not start a case wait for `cordon redrive`. */
  triggerQueueUrl: string;
  forensicsStateMachineArn: string;
  releaseStateMachineArn: string;
}

/** The stage's parameters as serverless.yml declares them: `params.default` overlaid by the stage's. */
export function stageParams(stage: string): Record<string, string> {
  const doc = parse(readFileSync(resolve(repoRoot, 'serverless.yml'), 'utf8'), { logLevel: 'error' }) as {
    params: Record<string, Record<string, unknown>>;
  };
  const merged = { ...doc.params.default, ...(doc.params[stage] ?? {}) };
  return Object.fromEntries(Object.entries(merged).map(([k, v]) => [k, String(v ?? '')]));
}

/** The SSM documents as the stack defines them in resources/memory-capture.yml, named as deployed. */
function ssmDocuments(
  stage: string,
): { logicalId: string; name: string; content: unknown; format: string }[] {
  const file = resolve(repoRoot, 'resources/memory-capture.yml');
  const doc = parse(readFileSync(file, 'utf8'), { logLevel: 'error' }) as {
    Resources: Record<
      string,
      { Type: string; Properties: { Name: string; Content: unknown; DocumentFormat?: string } }
    >;
  };
  return Object.entries(doc.Resources)
    .filter(([, r]) => r.Type === 'AWS::SSM::Document')
    .map(([logicalId, r]) => ({
      logicalId,
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the Serverless Framework's stage variable.
      name: r.Properties.Name.replaceAll('${sls:stage}', stage),
      content: r.Properties.Content,
      format: r.Properties.DocumentFormat ?? 'YAML',
    }));
}

/**
 * Creates in the emulated account what `serverless deploy` creates on AWS and the functions need at
 * run time: the Object Lock evidence bucket, the Cases table, the topic (with a queue to read it), the
 * keys, the quarantine profile, the tools bucket and the SSM documents. Returns the functions'
 * environment, built from the same stage parameters as serverless.yml.
 */
export async function deployLocalStack(endpoint: string, stage = 'dev'): Promise<LocalStack> {
  const base = {
    endpoint,
    region: localRegion,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
  const stackName = `cordon-${stage}`;
  const cfn = new CloudFormationClient(base);
  const existing = await cfn.send(new DescribeStacksCommand({ StackName: stackName })).catch(() => undefined);
  const saved = existing?.Stacks?.[0]?.Outputs?.find((o) => o.OutputKey === 'LocalStackJson')?.OutputValue;
  if (saved) return JSON.parse(saved) as LocalStack;
  const created = await createLocalStack(stage, base);
  await cfn.send(
    new CreateStackCommand({
      StackName: stackName,
      TemplateBody: JSON.stringify(stackOutputsTemplate(created)),
    }),
  );
  return created;
}

/**
 * The names a deployed stack publishes as CloudFormation outputs (resources/outputs.yml), published
 * the same way in the emulator so that the CLI finds them by one code path. The local run's whole
 * description rides along as one more output, so that a later run on the same emulator reuses it.
 */
export function stackOutputsTemplate(stack: LocalStack) {
  const outputs: Record<string, string> = {
    EvidenceBucketName: stack.bucket,
    CasesTableName: stack.table,
    AlertTopicArn: stack.topicArn,
    SigningKeyArn: stack.signingKeyId,
    ...(stack.addendumKeyArn ? { AddendumKeyArn: stack.addendumKeyArn } : {}),
    ToolsBucketName: stack.toolsBucket,
    TriggerQueueUrl: stack.triggerQueueUrl,
    ForensicsStateMachineArn: stack.forensicsStateMachineArn,
    ReleaseStateMachineArn: stack.releaseStateMachineArn,
    LocalStackJson: JSON.stringify(stack),
  };
  return {
    AWSTemplateFormatVersion: '2010-09-09',
    Resources: {
      Marker: {
        Type: 'AWS::SSM::Parameter',
        Properties: { Type: 'String', Value: stack.stackName, Name: `/${stack.stackName}/marker` },
      },
    },
    Outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, { Value: v }])),
  };
}

async function createLocalStack(
  stage: string,
  base: { endpoint: string; region: string; credentials: { accessKeyId: string; secretAccessKey: string } },
): Promise<LocalStack> {
  const params = stageParams(stage);
  const endpoint = base.endpoint;
  const s3 = new S3Client({ ...base, forcePathStyle: true });
  const kms = new KMSClient(base);
  const ddb = new DynamoDBClient(base);
  const sns = new SNSClient(base);
  const sqs = new SQSClient(base);
  const eventBridge = new EventBridgeClient(base);
  const iam = new IAMClient(base);
  const ssm = new SSMClient(base);

  const evidenceKey = await kms.send(new CreateKeyCommand({ Description: 'Cordon evidence (local)' }));
  const signingKey = await kms.send(
    new CreateKeyCommand({
      Description: 'Cordon manifest signing (local)',
      KeySpec: 'ECC_NIST_P256',
      KeyUsage: 'SIGN_VERIFY',
    }),
  );
  const addendumKey = await kms.send(
    new CreateKeyCommand({
      Description: 'Cordon investigators addenda signing (local)',
      KeySpec: 'ECC_NIST_P256',
      KeyUsage: 'SIGN_VERIFY',
    }),
  );
  const bucket = `cordon-evidence-${stage}-${localAccountId}-${localRegion}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
  await s3.send(
    new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }),
  );
  await s3.send(
    new PutObjectLockConfigurationCommand({
      Bucket: bucket,
      ObjectLockConfiguration: {
        ObjectLockEnabled: 'Enabled',
        Rule: {
          DefaultRetention: {
            Mode: params.objectLockMode as 'COMPLIANCE' | 'GOVERNANCE',
            Days: Number(params.objectLockDays),
          },
        },
      },
    }),
  );
  await s3.send(
    new PutBucketEncryptionCommand({
      Bucket: bucket,
      ServerSideEncryptionConfiguration: {
        Rules: [
          {
            ApplyServerSideEncryptionByDefault: {
              SSEAlgorithm: 'aws:kms',
              KMSMasterKeyID: evidenceKey.KeyMetadata?.Arn,
            },
            BucketKeyEnabled: true,
          },
        ],
      },
    }),
  );
  const toolsBucket = `cordon-tools-${stage}-${localAccountId}-${localRegion}`;
  await s3.send(new CreateBucketCommand({ Bucket: toolsBucket }));
  // The stand-in acquisition tool, whose SHA-256 the dev stage pins: what an operator uploads on AWS.
  await installStandInTools({ endpoint, region: localRegion, bucket: toolsBucket });
  await s3.send(
    new PutBucketVersioningCommand({ Bucket: toolsBucket, VersioningConfiguration: { Status: 'Enabled' } }),
  );

  const table = `cordon-cases-${stage}`;
  await ddb.send(
    new CreateTableCommand({
      TableName: table,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
        { AttributeName: 'instanceKey', AttributeType: 'S' },
        { AttributeName: 'openedAt', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: 'byInstance',
          KeySchema: [
            { AttributeName: 'instanceKey', KeyType: 'HASH' },
            { AttributeName: 'openedAt', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
    }),
  );

  const topic = await sns.send(new CreateTopicCommand({ Name: `cordon-alerts-${stage}` }));
  const queue = await sqs.send(new CreateQueueCommand({ QueueName: `cordon-alerts-${stage}-inbox` }));
  const queueArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queue.QueueUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes?.QueueArn;
  await sns.send(new SubscribeCommand({ TopicArn: topic.TopicArn, Protocol: 'sqs', Endpoint: queueArn }));
  const triggerQueue = await sqs.send(new CreateQueueCommand({ QueueName: `cordon-${stage}-triggers` }));
  // Case events (functions/core/events.ts) go to the default bus; a rule puts Cordon's on a queue that
  // the demo reads back. An SQS target: a rule targeting Step Functions, Lambda or SNS makes the
  // emulator's PutEvents fail (../shared/EMULATOR.md).
  const eventsQueue = await sqs.send(new CreateQueueCommand({ QueueName: `cordon-${stage}-events-inbox` }));
  const eventsQueueArn = (
    await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: eventsQueue.QueueUrl, AttributeNames: ['QueueArn'] }),
    )
  ).Attributes?.QueueArn;
  await eventBridge.send(
    new PutRuleCommand({
      Name: `cordon-${stage}-case-events`,
      EventPattern: JSON.stringify({ source: ['cordon'] }),
    }),
  );
  await eventBridge.send(
    new PutTargetsCommand({
      Rule: `cordon-${stage}-case-events`,
      Targets: [{ Id: 'inbox', Arn: eventsQueueArn }],
    }),
  );

  const quarantine = `cordon-quarantine-${stage}`;
  await iam.send(
    new CreateRoleCommand({
      RoleName: quarantine,
      AssumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' },
        ],
      }),
    }),
  );
  await iam.send(
    new PutRolePolicyCommand({
      RoleName: quarantine,
      PolicyName: 'ssm-agent-only',
      PolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Action: ['ssm:UpdateInstanceInformation', 'ssmmessages:*', 'ec2messages:*'],
            Resource: '*',
          },
        ],
      }),
    }),
  );
  await iam.send(new CreateInstanceProfileCommand({ InstanceProfileName: quarantine }));
  await iam.send(
    new AddRoleToInstanceProfileCommand({ InstanceProfileName: quarantine, RoleName: quarantine }),
  );

  const documents: Record<string, string> = {};
  for (const d of ssmDocuments(stage)) {
    await ssm.send(
      new CreateDocumentCommand({
        Name: d.name,
        DocumentType: 'Command',
        DocumentFormat: 'JSON',
        Content: JSON.stringify(d.content),
      }),
    );
    documents[d.logicalId] = d.name;
  }

  const sfn = new SFNClient(base);
  const machines: Record<string, string> = {};
  for (const [name, file] of [
    ['forensics', 'statemachines/forensics.asl.yml'],
    ['release', 'statemachines/release.asl.yml'],
  ] as const) {
    const created = await sfn.send(
      new CreateStateMachineCommand({
        name: `cordon-${name}-${stage}`,
        definition: JSON.stringify(loadDefinition(file).definition),
        roleArn: `arn:aws:iam::${localAccountId}:role/cordon-${stage}-states`,
      }),
    );
    machines[name] = created.stateMachineArn as string;
  }

  const env: Record<string, string> = {
    CORDON_STAGE: stage,
    CORDON_ACCOUNT_ID: localAccountId,
    AWS_REGION: localRegion,
    EVIDENCE_BUCKET: bucket,
    CASES_TABLE: table,
    ALERT_TOPIC_ARN: topic.TopicArn as string,
    SIGNING_KEY_ID: signingKey.KeyMetadata?.Arn as string,
    MEMBER_ROLE_NAME: params.memberRoleName as string,
    OBJECT_LOCK_MODE: params.objectLockMode as string,
    OBJECT_LOCK_DAYS: params.objectLockDays as string,
    MIN_SEVERITY: params.minSeverity as string,
    // serverless.yml sets it on Intake only; the other functions never read it.
    RESPONSE_POLICY: params.responsePolicy as string,
    ACCEPT_SAMPLE_FINDINGS: params.acceptSampleFindings as string,
    ACCEPT_SECURITYHUB_IMPORTED: params.acceptSecurityHubImported as string,
    SECURITYHUB_ACTION_ID: params.securityHubActionId as string,
    // As the template sets it: exactly 'true' or 'false'.
    SECURITYHUB_RESOLVE_ON_COMPLETE: params.securityHubResolveOnComplete === 'true' ? 'true' : 'false',
    FORENSIC_CIDR: params.forensicCidr as string,
    ASG_MODE: params.asgMode as string,
    CONNTRACK_WAIT_SECONDS: '0',
    REVOKE_SCOPE: params.revokeScope as string,
    REQUIRE_IMDSV2: params.requireImdsv2 as string,
    BLOCK_REMOTE_IPS: params.blockRemoteIps as string,
    QUARANTINE_PROFILE_NAME: quarantine,
    SNAPSHOT_LOCK_DAYS: params.snapshotLockDays as string,
    SNAPSHOT_COPY_ACCOUNT_ID: params.snapshotCopyAccountId as string,
    SNAPSHOT_COPY_KMS_KEY_ARN: params.snapshotCopyKmsKeyArn as string,
    SNAPSHOT_BUDGET_SECONDS: params.snapshotBudgetSeconds as string,
    MEMORY_BUDGET_SECONDS: params.memoryBudgetSeconds as string,
    MEMORY_DOCUMENT_LINUX: documents.MemoryCaptureLinuxDocument ?? 'missing-linux-document',
    MEMORY_DOCUMENT_WINDOWS: documents.MemoryCaptureWindowsDocument ?? 'missing-windows-document',
    MEMORY_COMPRESS: (params.memoryCompress as string) ?? 'false',
    TOOLS_BUCKET: toolsBucket,
    TOOLS_PREFIX: 'tools/',
    REDRIVE_QUEUE_URL: triggerQueue.QueueUrl as string,
    AVML_SHA256: params.avmlSha256 as string,
    WINPMEM_SHA256: params.winpmemSha256 as string,
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
  };
  return {
    stackName: `cordon-${stage}`,
    forensicsStateMachineArn: machines.forensics as string,
    releaseStateMachineArn: machines.release as string,
    env,
    bucket,
    table,
    topicArn: topic.TopicArn as string,
    alertQueueUrl: queue.QueueUrl as string,
    eventsQueueUrl: eventsQueue.QueueUrl as string,
    signingKeyId: signingKey.KeyMetadata?.Arn as string,
    addendumKeyArn: addendumKey.KeyMetadata?.Arn as string,
    evidenceKeyArn: evidenceKey.KeyMetadata?.Arn as string,
    toolsBucket,
    triggerQueueUrl: triggerQueue.QueueUrl as string,
  };
}

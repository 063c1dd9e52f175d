import {
  type CloudFormationClient,
  DescribeStacksCommand,
  GetTemplateCommand,
} from '@aws-sdk/client-cloudformation';
import { z } from 'zod';
import { awsErrorCode } from '../../functions/core/errors.js';
import type { LocalStack } from '../local/stack.js';
import { CliError, StackNotFoundError } from './errors.js';

/** What the CLI needs to know about a deployed Cordon: the outputs of resources/outputs.yml. */
export interface StackInfo {
  stackName: string;
  stage: string;
  region: string;
  evidenceBucket: string;
  casesTable: string;
  alertTopicArn: string;
  signingKeyArn: string;
  toolsBucket: string;
  triggerQueueUrl: string;
  forensicsStateMachineArn: string;
  releaseStateMachineArn: string;
  /** The key investigators sign addenda with; absent on a stack deployed before addenda existed. */
  addendumKeyArn?: string;
  /** Only on the emulator: the whole local stack, to run the workflows in this process. */
  local?: LocalStack;
}

const outputNames = {
  evidenceBucket: 'EvidenceBucketName',
  casesTable: 'CasesTableName',
  alertTopicArn: 'AlertTopicArn',
  signingKeyArn: 'SigningKeyArn',
  toolsBucket: 'ToolsBucketName',
  triggerQueueUrl: 'TriggerQueueUrl',
  forensicsStateMachineArn: 'ForensicsStateMachineArn',
  releaseStateMachineArn: 'ReleaseStateMachineArn',
} as const;

const localStackSchema = z.looseObject({
  stackName: z.string(),
  env: z.record(z.string(), z.string()),
  bucket: z.string(),
  table: z.string(),
  topicArn: z.string(),
  alertQueueUrl: z.string(),
  signingKeyId: z.string(),
  evidenceKeyArn: z.string(),
  toolsBucket: z.string(),
  triggerQueueUrl: z.string(),
  forensicsStateMachineArn: z.string(),
  releaseStateMachineArn: z.string(),
});

export const stackNameOf = (stage: string) => `cordon-${stage}`;

/**
 * Finds the stack `cordon-<stage>` and reads its outputs. The emulated stack publishes the same
 * outputs plus `LocalStackJson`, which lets the CLI run the workflows in-process.
 */
export async function discoverStack(
  cfn: CloudFormationClient,
  stage: string,
  region: string,
  options: { endpoint?: string } = {},
): Promise<StackInfo> {
  const stackName = stackNameOf(stage);
  let outputs: Map<string, string>;
  try {
    const out = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    const stack = out.Stacks?.[0];
    if (!stack) throw Object.assign(new Error('no stack'), { name: 'ValidationError' });
    outputs = new Map((stack.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']));
  } catch (error) {
    if (awsErrorCode(error) === 'ValidationError' && /does not exist|no stack/i.test(String(error))) {
      throw new StackNotFoundError(
        `No Cordon stack ${stackName} in ${region}${options.endpoint ? ` at ${options.endpoint}` : ''}.`,
        options.endpoint
          ? 'Deploy the emulated stack first (npm run demo -- --endpoint URL), or pass --stage.'
          : `Deploy it (npx osls deploy --stage ${stage} --region ${region}), or pass --stage / --region for the stack you mean.`,
      );
    }
    throw error;
  }
  const read = (name: string): string => {
    const value = outputs.get(name);
    if (!value) {
      throw new CliError(
        `The stack ${stackName} has no output ${name}.`,
        'It was deployed from an older version of Cordon: deploy it again.',
      );
    }
    return value;
  };
  const info: StackInfo = {
    stackName,
    stage,
    region,
    evidenceBucket: read(outputNames.evidenceBucket),
    casesTable: read(outputNames.casesTable),
    alertTopicArn: read(outputNames.alertTopicArn),
    signingKeyArn: read(outputNames.signingKeyArn),
    toolsBucket: read(outputNames.toolsBucket),
    triggerQueueUrl: read(outputNames.triggerQueueUrl),
    forensicsStateMachineArn: read(outputNames.forensicsStateMachineArn),
    releaseStateMachineArn: read(outputNames.releaseStateMachineArn),
  };
  const addendumKeyArn = outputs.get('AddendumKeyArn');
  if (addendumKeyArn) info.addendumKeyArn = addendumKeyArn;
  const localJson = outputs.get('LocalStackJson');
  if (localJson) {
    const parsed = localStackSchema.safeParse(JSON.parse(localJson));
    if (!parsed.success) throw new CliError(`The stack ${stackName} publishes a malformed LocalStackJson.`);
    info.local = parsed.data as LocalStack;
  }
  return info;
}

/**
 * A deployed function's environment as the stack's processed template declares it (serverless resolves
 * its parameters into the template): the settings no stack output carries. Empty when the template
 * has no such function.
 */
export async function functionEnvironment(
  cfn: CloudFormationClient,
  stackName: string,
  functionName: string,
): Promise<Record<string, unknown>> {
  const body = (await cfn.send(new GetTemplateCommand({ StackName: stackName, TemplateStage: 'Processed' })))
    .TemplateBody;
  let template: {
    Resources?: Record<
      string,
      {
        Type?: string;
        Properties?: { FunctionName?: unknown; Environment?: { Variables?: Record<string, unknown> } };
      }
    >;
  };
  try {
    template = JSON.parse(body ?? '{}');
  } catch {
    throw new CliError(`The template of ${stackName} is not JSON: its functions' settings cannot be read.`);
  }
  const fn = Object.values(template.Resources ?? {}).find(
    (r) => r.Type === 'AWS::Lambda::Function' && r.Properties?.FunctionName === functionName,
  );
  return fn?.Properties?.Environment?.Variables ?? {};
}

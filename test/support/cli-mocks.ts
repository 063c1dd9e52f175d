import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { Readable } from 'node:stream';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { AwsClientStub } from 'aws-sdk-client-mock';
import { mockClient } from 'aws-sdk-client-mock';
import { manifestSchemaVersion, signingStatement } from '../../functions/core/manifest.js';
import { runCli } from '../../scripts/cli/main.js';
import { capturedIo } from './cli-fixtures.js';

/** The outputs of a deployed `cordon-dev` in us-east-1, as resources/outputs.yml publishes them. */
export const deployed = {
  EvidenceBucketName: 'cordon-evidence-dev-111122223333-us-east-1',
  CasesTableName: 'cordon-cases-dev',
  AlertTopicArn: 'arn:aws:sns:us-east-1:111122223333:cordon-alerts-dev',
  SigningKeyArn: 'arn:aws:kms:us-east-1:111122223333:key/sign-1',
  ToolsBucketName: 'cordon-tools-dev-111122223333-us-east-1',
  TriggerQueueUrl: 'https://sqs.us-east-1.amazonaws.com/111122223333/cordon-dev-triggers',
  ForensicsStateMachineArn: 'arn:aws:states:us-east-1:111122223333:stateMachine:cordon-forensics-dev',
  ReleaseStateMachineArn: 'arn:aws:states:us-east-1:111122223333:stateMachine:cordon-release-dev',
};

export const callerArn = 'arn:aws:sts::111122223333:assumed-role/responder/alice';

/** CloudFormation and STS as a deployed account answers them. */
export function mockDeployedStack(): {
  cfn: AwsClientStub<CloudFormationClient>;
  sts: AwsClientStub<STSClient>;
} {
  const cfn = mockClient(CloudFormationClient);
  const sts = mockClient(STSClient);
  cfn.on(DescribeStacksCommand, { StackName: 'cordon-dev' }).resolves({
    Stacks: [
      {
        StackName: 'cordon-dev',
        CreationTime: new Date(),
        StackStatus: 'UPDATE_COMPLETE',
        Outputs: Object.entries(deployed).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })),
      },
    ],
  });
  sts
    .on(GetCallerIdentityCommand)
    .resolves({ Arn: callerArn, Account: '111122223333', UserId: 'AROA:alice' });
  return { cfn, sts };
}

/** Runs `cordon ARGS` against "AWS" (the mocked clients), in us-east-1, with no real waiting. */
export async function cordonOnAws(
  args: string[],
  options: { answer?: string; tty?: boolean } = {},
): Promise<{ code: number; stdout: string; stderr: string; asked: string[] }> {
  const io = capturedIo(options.answer);
  const code = await runCli([...args, '--region', 'us-east-1'], {
    io: options.tty === undefined ? io : Object.assign(io, { inIsTty: options.tty }),
    sleep: async () => undefined,
    now: () => new Date('2026-11-27T21:00:00Z'),
  });
  return { code, stdout: io.stdout, stderr: io.stderr, asked: io.asked };
}

/** An S3 GetObject body as the SDK gives one: a stream that can also be read whole. */
export function objectBody(bytes: Uint8Array | string) {
  const buffer = Buffer.from(bytes);
  return Object.assign(Readable.from([buffer]), {
    transformToByteArray: async () => new Uint8Array(buffer),
    transformToString: async () => buffer.toString('utf8'),
  });
}

export interface StoredObject {
  versionId: string;
  body: Buffer;
}

/**
 * A sealed case as Archive leaves it: artifacts, `manifest.json` naming them, and `manifest.sig` signed
 * with `signer` (a P-256 key standing in for the KMS key), each under its own version id.
 */
export function sealedCase(options: {
  caseId: string;
  bucket: string;
  keyId: string;
  artifacts: Record<string, string>;
  signer?: KeyObject;
  /** What the signature file claims as the public key (a verifier must ignore it). */
  embeddedPublicKey?: KeyObject;
}) {
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signer = options.signer ?? keys.privateKey;
  const folder = `cases/${options.caseId}/`;
  const objects = new Map<string, StoredObject>();
  const artifacts = Object.entries(options.artifacts).map(([name, text], i) => {
    const body = Buffer.from(text);
    objects.set(`${folder}${name}`, { versionId: `v-${i}`, body });
    return {
      key: `${folder}${name}`,
      versionId: `v-${i}`,
      bytes: body.byteLength,
      sha256: createHash('sha256').update(body).digest('hex'),
      contentType: 'application/json',
    };
  });
  const manifestBody = Buffer.from(
    `${JSON.stringify({ schema: manifestSchemaVersion, caseId: options.caseId, instanceId: 'i-0123456789abcdef0', outcome: 'completed', bucket: options.bucket, artifacts }, null, 2)}\n`,
  );
  objects.set(`${folder}manifest.json`, { versionId: 'v-manifest', body: manifestBody });
  const digest = createHash('sha256').update(manifestBody).digest('hex');
  const statement = signingStatement(options.caseId, digest);
  const signature = sign('sha256', Buffer.from(statement), signer).toString('base64');
  const embedded = options.embeddedPublicKey ?? keys.publicKey;
  const sigBody = Buffer.from(
    JSON.stringify({
      schema: manifestSchemaVersion,
      keyId: options.keyId,
      signingAlgorithm: 'ECDSA_SHA_256',
      messageType: 'RAW',
      message: statement,
      manifest: { key: `${folder}manifest.json`, versionId: 'v-manifest', sha256: digest },
      signature,
      publicKey: embedded.export({ format: 'der', type: 'spki' }).toString('base64'),
    }),
  );
  objects.set(`${folder}manifest.sig`, { versionId: 'v-sig', body: sigBody });
  return {
    objects,
    artifacts,
    publicKeyDer: new Uint8Array(keys.publicKey.export({ format: 'der', type: 'spki' })),
    statement,
    signature,
  };
}

/** S3 serving `objects` by key and version, each locked as `lock` says. */
export function serveObjects(
  s3: AwsClientStub<S3Client>,
  objects: Map<string, StoredObject>,
  lock: {
    ObjectLockMode?: 'GOVERNANCE' | 'COMPLIANCE';
    ObjectLockRetainUntilDate?: Date;
    ObjectLockLegalHoldStatus?: 'ON' | 'OFF';
  },
): void {
  const find = (input: { Key?: string; VersionId?: string }) => {
    const o = objects.get(input.Key ?? '');
    if (!o || (input.VersionId && input.VersionId !== o.versionId)) {
      throw Object.assign(new Error('The specified key does not exist.'), {
        name: 'NoSuchKey',
        $metadata: { httpStatusCode: 404 },
      });
    }
    return o;
  };
  s3.on(GetObjectCommand).callsFake((input: { Key?: string; VersionId?: string; Range?: string }) => {
    const o = find(input);
    const range = /^bytes=(\d+)-(\d+)$/.exec(input.Range ?? '');
    const body = range ? o.body.subarray(Number(range[1]), Number(range[2]) + 1) : o.body;
    return {
      Body: objectBody(body),
      ContentLength: body.byteLength,
      VersionId: o.versionId,
      ...(range ? { ContentRange: `bytes ${range[1]}-${range[2]}/${o.body.byteLength}` } : {}),
    };
  });
  s3.on(HeadObjectCommand).callsFake((input: { Key?: string; VersionId?: string }) => {
    const o = find(input);
    return { ContentLength: o.body.byteLength, VersionId: o.versionId, ...lock };
  });
  s3.on(ListObjectsV2Command).callsFake((input: { Prefix?: string }) => {
    const keys = [...objects.keys()].filter((k) => k.startsWith(input.Prefix ?? '')).sort();
    return {
      KeyCount: keys.length,
      IsTruncated: false,
      Contents: keys.map((Key) => ({ Key, Size: objects.get(Key)?.body.byteLength ?? 0 })),
    };
  });
}

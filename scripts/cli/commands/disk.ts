import { resolve } from 'node:path';
import { type CommandContext, type CommandSpec, parseCaseId, stringValue } from '../context.js';
import { CliError, exitCodes, UsageError } from '../errors.js';
import { jsonDocument, ProgressBar, safe, table } from '../output.js';

const help = `usage: cordon evidence disk CASE --attach-to INSTANCE_ID [--kms-key KEY_ARN]
       cordon evidence disk CASE --detach
       cordon evidence disk CASE --image DIR

The case's disks, from the snapshots its snapshots.json records (the version the sealed manifest
names). Your credentials' account must hold them: the case's own account, or the forensic account
its snapshots were copied to (snapshotCopyAccountId); the region is always the case's.

  --attach-to INSTANCE_ID  for each volume of the case, create a volume from its snapshot (or the
                           forensic account's copy) in the workstation's Availability Zone,
                           encrypted under the forensic key, tagged with the case and your identity,
                           and attach it at a free device name (/dev/sdf to /dev/sdp). Prints each
                           device and a read-only mount line (mount -o ro,noload), and records on the
                           case's timeline who attached what, when. Refuses, before any change, the
                           case's own instance or any instance a case holds, a workstation in another
                           account or region than the snapshots, and a case not copied to this
                           account. Run it again: volumes already attached are reported, not made twice.
  --kms-key KEY_ARN        the forensic key for volumes made from the case's own snapshots (a copy in
                           the forensic account is already under that account's key, which is used)
  --detach                 detach and delete exactly the volumes --attach-to made for the case (tagged
                           with it); snapshots are never touched. Recorded on the timeline too.
  --image DIR              each snapshot as a raw image DIR/<snapshot>.raw through the EBS direct APIs:
                           the listed blocks fetched a few at a time, each checked against the SHA-256
                           EBS returns with it, the unlisted ones left as holes in a sparse file the
                           size of the volume; then the whole image's SHA-256. Resumable: run the same
                           command again after an interruption. The first complete image of a snapshot
                           is recorded as a signed addendum (cases/CASE/addenda/, a new locked object
                           beside the sealed manifest, which is never changed); later images are
                           checked against it. Costs: one GetSnapshotBlock per listed 512 KiB block.

Exits 1 when a block or an image does not match, or the workstation is refused.`;

function oneMode(values: Record<string, unknown>): 'attach' | 'detach' | 'image' {
  const modes = [
    ...(typeof values['attach-to'] === 'string' ? ['attach' as const] : []),
    ...(values.detach === true ? ['detach' as const] : []),
    ...(typeof values.image === 'string' ? ['image' as const] : []),
  ];
  if (modes.length !== 1)
    throw new UsageError(
      'give exactly one of --attach-to INSTANCE_ID, --detach and --image DIR',
      'Run cordon evidence disk --help.',
    );
  if (values['kms-key'] !== undefined && modes[0] !== 'attach')
    throw new UsageError('--kms-key goes with --attach-to');
  return modes[0] as 'attach' | 'detach' | 'image';
}

async function timelineWriter(ctx: CommandContext, caseId: string) {
  const stack = await ctx.stack();
  const { CaseStore } = await import('../../../functions/core/cases.js');
  const store = new CaseStore(await ctx.aws.ddb(), stack.casesTable, ctx.now);
  return (event: {
    action: string;
    status: 'ok' | 'failed' | 'info';
    target: string;
    requestId?: string;
    detail: string;
  }) => store.record(caseId, { step: 'cordon evidence disk', ...event }, 'investigator');
}

async function attach(ctx: CommandContext, caseId: string, values: Record<string, unknown>): Promise<number> {
  const { attachCaseDisks, parseInstanceId, parseKmsKeyArn, readCaseDisks } = await import('../disk.js');
  const workstationId = parseInstanceId(values['attach-to'] as string, '--attach-to');
  const kmsKeyArn = parseKmsKeyArn(values['kms-key'] as string | undefined);
  const stack = await ctx.stack();
  const disks = await readCaseDisks(await ctx.aws.s3(), stack.evidenceBucket, caseId);
  const caller = await ctx.aws.identity();
  const attached = await attachCaseDisks(
    { caseId, disks: disks.snapshots, caller, workstationId, ...(kmsKeyArn ? { kmsKeyArn } : {}) },
    {
      ec2: await ctx.aws.ec2(disks.snapshots.region),
      record: await timelineWriter(ctx, caseId),
      sleep: ctx.sleep,
    },
  );
  if (ctx.json) {
    ctx.io.out(jsonDocument({ caseId, workstationId, volumes: attached }));
    return 0;
  }
  ctx.io.out(
    table(
      ['VOLUME', 'FROM SNAPSHOT', 'OF', 'DEVICE', 'RESULT'],
      attached.map((a) => [a.volumeId, a.snapshotId, a.sourceVolumeId, a.device, a.status]),
    ),
  );
  ctx.io.out(
    '\nMount each read-only on the workstation (first partition; XFS takes -o ro,norecovery instead):\n',
  );
  for (const a of attached) ctx.io.out(`  ${a.mount}\n`);
  ctx.io.out(`\nWhen done: cordon evidence disk ${caseId} --detach\n`);
  return 0;
}

async function detach(ctx: CommandContext, caseId: string): Promise<number> {
  const { detachCaseDisks, readCaseDisks } = await import('../disk.js');
  const stack = await ctx.stack();
  const disks = await readCaseDisks(await ctx.aws.s3(), stack.evidenceBucket, caseId);
  const caller = await ctx.aws.identity();
  const detached = await detachCaseDisks(
    { caseId, caller },
    {
      ec2: await ctx.aws.ec2(disks.snapshots.region),
      record: await timelineWriter(ctx, caseId),
      sleep: ctx.sleep,
    },
  );
  if (ctx.json) {
    ctx.io.out(jsonDocument({ caseId, volumes: detached }));
    return 0;
  }
  if (detached.length === 0) {
    ctx.io.out(`Case ${caseId} has no volume made by --attach-to: nothing to detach.\n`);
    return 0;
  }
  ctx.io.out(
    table(
      ['VOLUME', 'FROM SNAPSHOT', 'DETACHED FROM', 'RESULT'],
      detached.map((d) => [d.volumeId, d.snapshotId, d.detachedFrom ?? '-', d.status]),
    ),
  );
  ctx.io.out(`${detached.length} volume(s) detached and deleted; the case's snapshots are untouched.\n`);
  return 0;
}

async function image(ctx: CommandContext, caseId: string, dir: string): Promise<number> {
  const { readCaseDisks, sourcesFor } = await import('../disk.js');
  const { downloadSnapshotImage } = await import('../disk-image.js');
  const { readAddendum, recordAddendum } = await import('../addenda.js');
  const stack = await ctx.stack();
  const s3 = await ctx.aws.s3();
  const disks = await readCaseDisks(s3, stack.evidenceBucket, caseId);
  if (!disks.sealed) {
    throw new CliError(
      `Case ${caseId} is not sealed yet: an image's addendum stands beside a sealed manifest.`,
      `Wait for the workflow to seal it (cordon status ${caseId}).`,
      exitCodes.failed,
    );
  }
  const caller = await ctx.aws.identity();
  const sources = sourcesFor(disks.snapshots, caller.account);
  const ebs = await ctx.aws.ebs(disks.snapshots.region);
  const rows: unknown[][] = [];
  const results: unknown[] = [];
  let failed = 0;
  const resumeHint = `Interrupted: run the same command again to resume from the blocks already in ${dir}.\n`;
  for (const source of sources) {
    const addendum = await readAddendum(s3, stack.evidenceBucket, caseId, source.snapshotId);
    let bar: ProgressBar | undefined;
    let done = 0;
    const onInterrupt = () => {
      bar?.finish();
      ctx.io.err(`\n${resumeHint}`);
      process.exit(130);
    };
    process.once('SIGINT', onInterrupt);
    let outcome: Awaited<ReturnType<typeof downloadSnapshotImage>>;
    try {
      outcome = await downloadSnapshotImage(ebs, source, dir, {
        ...(addendum ? { expectedSha256: addendum.file.addendum.sha256 } : {}),
        onListed: (_t, list) => {
          bar = new ProgressBar(ctx.io, list.blocks.length * list.blockSize, source.snapshotId);
        },
        onProgress: (bytes) => {
          done += bytes;
          bar?.update(done);
        },
      });
    } catch (error) {
      bar?.finish();
      ctx.io.err(resumeHint);
      throw error;
    } finally {
      process.off('SIGINT', onInterrupt);
    }
    bar?.finish();
    let result: string;
    let recorded: { key: string; versionId: string; created: boolean } | undefined;
    if (outcome.status === 'failed') {
      failed += 1;
      result = `FAILED: ${outcome.reason ?? 'unknown'}`;
    } else if (addendum) {
      result = `${outcome.status}, matches the addendum of ${safe(addendum.file.addendum.recordedAt)}`;
    } else {
      if (!stack.addendumKeyArn) {
        throw new CliError(
          `The image of ${source.snapshotId} is complete (SHA-256 ${outcome.sha256}), but the stack ${stack.stackName} has no AddendumKeyArn output to sign its addendum with.`,
          'Deploy the current version of Cordon, then run the command again: the image is kept and is checked, not fetched again.',
        );
      }
      const { stored, created } = await recordAddendum(
        { s3, kms: await ctx.aws.kms(), bucket: stack.evidenceBucket, keyArn: stack.addendumKeyArn },
        {
          schema: 'cordon.addendum/1',
          kind: 'disk-image',
          caseId,
          snapshotId: source.snapshotId,
          volumeId: source.volumeId,
          accountId: source.accountId,
          region: source.region,
          volumeBytes: outcome.volumeBytes,
          blockSize: outcome.blockSize,
          blocks: outcome.blocks,
          sha256: outcome.sha256,
          recordedAt: ctx.now().toISOString(),
          recordedBy: caller.arn,
          manifestSha256: disks.sealed.signature.manifest.sha256,
        },
      );
      recorded = { key: stored.key, versionId: stored.versionId, created };
      if (!created && stored.file.addendum.sha256 !== outcome.sha256) {
        failed += 1;
        result = `FAILED: another run recorded SHA-256 ${stored.file.addendum.sha256} first`;
      } else {
        result = `${outcome.status}, ${created ? 'addendum recorded' : 'matches the addendum another run recorded'} (${stored.key})`;
      }
    }
    rows.push([
      source.snapshotId,
      source.volumeId,
      outcome.volumeBytes,
      outcome.blocks,
      outcome.sha256 || '-',
      result,
    ]);
    results.push({
      ...outcome,
      ...(recorded
        ? { addendum: recorded }
        : addendum
          ? { addendum: { key: addendum.key, versionId: addendum.versionId, created: false } }
          : {}),
    });
  }
  if (ctx.json) {
    ctx.io.out(jsonDocument({ caseId, dir, ok: failed === 0, images: results }));
  } else {
    ctx.io.out(table(['SNAPSHOT', 'VOLUME', 'BYTES', 'BLOCKS', 'SHA256', 'RESULT'], rows, 300));
    ctx.io.out(
      failed
        ? `${failed} image(s) did not check out; nothing was recorded for them.\n`
        : `All ${rows.length} image(s) are in ${dir}, every block checked. cordon evidence verify ${caseId} checks the addenda.\n`,
    );
  }
  return failed ? exitCodes.failed : exitCodes.ok;
}

export const evidenceDiskCommand: CommandSpec = {
  path: ['evidence', 'disk'],
  summary: "attach a case's snapshots to a forensic workstation, or pull verified raw images",
  positionals: ['CASE'],
  options: {
    'attach-to': { type: 'string' },
    'kms-key': { type: 'string' },
    detach: { type: 'boolean' },
    image: { type: 'string' },
  },
  help,
  async run(ctx, values, positionals) {
    const caseId = parseCaseId(positionals[0]);
    const mode = oneMode(values);
    if (mode === 'attach') return attach(ctx, caseId, values);
    if (mode === 'detach') return detach(ctx, caseId);
    return image(ctx, caseId, resolve(stringValue(values, 'image') as string));
  },
};

import { rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { paintVerdict } from '../colour.js';
import { type CommandSpec, parseCaseId, stringValue } from '../context.js';
import type { DownloadOutcome } from '../download.js';
import { explain, UsageError } from '../errors.js';
import type { EvidenceEntry } from '../evidence.js';
import { formatBytes, jsonDocument, ProgressBar, safe, table } from '../output.js';
import type { Verdict } from '../verify.js';

function entryRows(entries: EvidenceEntry[]) {
  return entries.map((e) => [
    e.name,
    e.bytes,
    e.sha256 || '-',
    e.lock.missing ? 'MISSING' : (e.lock.mode ?? '-'),
    e.lock.retainUntil ?? '-',
    e.lock.legalHold ?? '-',
    e.versionId,
  ]);
}

export const evidenceLsCommand: CommandSpec = {
  path: ['evidence', 'ls'],
  summary: "a case's artifacts with sizes, hashes, lock mode and retention",
  positionals: ['CASE'],
  options: {},
  help: `usage: cordon evidence ls CASE

Lists the artifacts the case's signed manifest names (then the manifest and its signature), each with
its size, SHA-256, the Object Lock mode and retain-until date S3 holds it under now, its legal hold and
its version id. A case not sealed yet lists what its folder holds, with the hashes their writers recorded.`,
  async run(ctx, _values, positionals) {
    const caseId = parseCaseId(positionals[0]);
    const stack = await ctx.stack();
    const s3 = await ctx.aws.s3();
    const { listEvidence, listUnsealed, NotSealedError, readSealedCase } = await import('../evidence.js');
    let entries: EvidenceEntry[];
    let sealed = true;
    try {
      entries = await listEvidence(s3, await readSealedCase(s3, stack.evidenceBucket, caseId), ctx.now());
    } catch (error) {
      if (!(error instanceof NotSealedError)) throw error;
      sealed = false;
      entries = await listUnsealed(s3, stack.evidenceBucket, caseId, ctx.now());
    }
    if (ctx.json) {
      ctx.io.out(jsonDocument({ caseId, bucket: stack.evidenceBucket, sealed, artifacts: entries }));
      return 0;
    }
    ctx.io.out(
      `Case ${caseId} in s3://${stack.evidenceBucket}/cases/${caseId}/${sealed ? '' : ' (NOT SEALED: no manifest.sig)'}\n`,
    );
    ctx.io.out(
      table(['NAME', 'BYTES', 'SHA256', 'LOCK', 'RETAIN UNTIL', 'HOLD', 'VERSION'], entryRows(entries), 120),
    );
    return 0;
  },
};

/** `--part-size` in MiB: a whole number from 1 to 1024, or absent for the default. */
export function parsePartSize(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[1-9][0-9]{0,3}$/.test(text) || Number(text) > 1024)
    throw new UsageError('--part-size is a whole number of MiB from 1 to 1024');
  return Number(text) * 2 ** 20;
}

export const evidenceGetCommand: CommandSpec = {
  path: ['evidence', 'get'],
  summary: 'download every artifact, checked against the manifest, resumable',
  positionals: ['CASE'],
  options: { out: { type: 'string' }, 'part-size': { type: 'string' } },
  help: `usage: cordon evidence get CASE [--out DIR] [--part-size MIB]

Downloads manifest.json, manifest.sig and every artifact the manifest names, by the version ids it
records, into DIR (default ./CASE). Large objects come in ranged parts of MIB MiB (default 8, and 16
for an object of 512 MiB or more; at most 1024), a few at a time, into NAME.part with a NAME.part.json
progress file: run the same command again after an interruption and it resumes from the parts already
on disk (with the part size it started with, unless given another, which starts the file over). Each
file is hashed once, in order, as its parts arrive (it is not read back), and gets its final name only
if its SHA-256 and size are the manifest's; otherwise it is deleted and the command fails, naming it.
What it hashed is recorded in your own state folder ($XDG_STATE_HOME/cordon, else
~/.local/state/cordon; %LOCALAPPDATA%\\cordon on Windows), with each file's inode, size and times:
cordon evidence verify --dir then does not read again a file unchanged since (see its --rehash). A
file already present with other content is never overwritten: it is reported and left as it was. One
download at a time writes into a folder (DIR/.cordon-get.lock); a second one into the same folder is
refused. On a terminal, a progress line on stderr shows the bytes, the rate and the time left. Then run
cordon evidence verify CASE --dir DIR.`,
  async run(ctx, values, positionals) {
    const caseId = parseCaseId(positionals[0]);
    const dir = resolve(stringValue(values, 'out') ?? caseId);
    const partSize = parsePartSize(stringValue(values, 'part-size'));
    // The stack's lookup (a call to CloudFormation) while the modules load: both come before the first byte.
    const [stack, s3, { readSealedCase }, { downloadCase, folderLockName, targetsOf }, { recordFolder }] =
      await Promise.all([
        ctx.stack(),
        ctx.aws.s3(),
        import('../evidence.js'),
        import('../download.js'),
        import('../get-record.js'),
      ]);
    const sealed = await readSealedCase(s3, stack.evidenceBucket, caseId);
    const targets = targetsOf(sealed);
    const total =
      targets.reduce((sum, t) => sum + t.bytes, 0) +
      sealed.manifestBytes.byteLength +
      sealed.signatureBytes.byteLength;
    if (ctx.io.errIsTty) {
      ctx.io.err(`Downloading ${targets.length + 2} files (${formatBytes(total)}) into ${dir}\n`);
    }
    const bar = new ProgressBar(ctx.io, total, caseId.slice(-6));
    let done = 0;
    const resumeHint = `Interrupted: run the same command again to resume from the parts already in ${dir}.\n`;
    // Ctrl-C: the progress files on disk are consistent (each is replaced whole), so say how to resume
    // and give the folder back (the exit skips the download's own clean-up).
    const onInterrupt = () => {
      bar.finish();
      rmSync(join(dir, folderLockName), { force: true });
      ctx.io.err(`\n${resumeHint}`);
      process.exit(130);
    };
    process.once('SIGINT', onInterrupt);
    let outcomes: DownloadOutcome[];
    try {
      outcomes = await downloadCase(s3, sealed, dir, {
        ...(partSize ? { partSize } : {}),
        record: {
          folder: recordFolder(),
          now: ctx.now,
          onError: (error) =>
            ctx.io.err(
              `Could not record what was hashed (${safe(explain(error).message, 200)}): cordon evidence verify --dir will read every file again.\n`,
            ),
        },
        onProgress: (bytes) => {
          done += bytes;
          bar.update(done);
        },
      });
    } catch (error) {
      bar.finish();
      const { FolderInUseError } = await import('../download.js');
      // Refused before anything was written: there is nothing to resume.
      if (!(error instanceof FolderInUseError)) ctx.io.err(resumeHint);
      throw error;
    } finally {
      process.off('SIGINT', onInterrupt);
    }
    bar.finish();
    const failed = outcomes.filter((o) => o.status === 'failed');
    const conflicts = outcomes.filter((o) => o.status === 'conflict');
    const ok = failed.length + conflicts.length === 0;
    if (ctx.json) {
      ctx.io.out(jsonDocument({ caseId, dir, ok, files: outcomes }));
    } else {
      ctx.io.out(
        table(
          ['NAME', 'BYTES', 'SHA256', 'RESULT'],
          outcomes.map((o) => [
            o.name,
            o.bytes,
            o.sha256,
            o.status === 'failed'
              ? `FAILED: ${o.reason}`
              : o.status === 'conflict'
                ? 'LEFT AS IT WAS: other content was already there'
                : o.status,
          ]),
          200,
        ),
      );
      const names = (list: DownloadOutcome[]) => list.map((f) => safe(f.name)).join(', ');
      if (conflicts.length) {
        ctx.io.out(
          `${conflicts.length} file(s) were already in ${dir} with other content and were left as they are (nothing was downloaded over them): ${names(conflicts)}. Download into an empty folder (--out), or move them away and run again.\n`,
        );
      }
      if (failed.length) {
        ctx.io.out(
          `${failed.length} file(s) S3 served did not match the manifest and were not kept: ${names(failed)}\n`,
        );
      }
      if (ok) {
        ctx.io.out(
          `All ${outcomes.length} files are in ${dir} and match the manifest. Check the signature: cordon evidence verify ${caseId} --dir ${dir}\n`,
        );
      }
    }
    return ok ? 0 : 1;
  },
};

const mark = (v: Verdict) => ({ pass: 'PASS', fail: 'FAIL', unchecked: 'NOT CHECKED' })[v.status];

export const evidenceVerifyCommand: CommandSpec = {
  path: ['evidence', 'verify'],
  summary: "prove a case's evidence intact: signature, hashes, locks",
  positionals: ['CASE'],
  options: {
    dir: { type: 'string' },
    'public-key': { type: 'string' },
    offline: { type: 'boolean' },
    rehash: { type: 'boolean' },
  },
  help: `usage: cordon evidence verify CASE [--dir DIR [--rehash]] [--public-key FILE] [--offline]

Checks, and prints a verdict for each:
  - the manifest's signature, offline with the signing key's public key (from KMS GetPublicKey on the
    stack's key, or from --public-key), and with KMS Verify where KMS is reachable; the public key is
    never taken from the signature file itself;
  - that the signed statement names this manifest (its SHA-256) and the manifest this case;
  - every artifact's SHA-256 and size: the objects in the bucket by the manifest's version ids, or the
    files in DIR;
  - that each object is still under Object Lock (a retention not yet expired, or a legal hold) and, in
    the bucket, still the version a read without a version id gets (nothing written over or deleted);
  - that nothing the manifest does not list is there: no other file in DIR, no object written into the
    case's folder after sealing;
  - in the bucket, each addendum (cases/CASE/addenda/, recorded by cordon evidence disk --image):
    signed by the stack's addendum key, beside this manifest, and locked.
Exits 1 if any check fails; the last line names each file that failed and what is wrong with it.

  --dir DIR          verify a folder written by cordon evidence get instead of the bucket's objects;
                     a file that get hashed, and that is unchanged since (same inode, size,
                     modification and change time, as get recorded them in your state folder), is
                     not read again: its verdict says so
  --rehash           with --dir: read and hash every file, whatever get recorded. Use it for a folder
                     others could write to while get ran, on a file system that keeps no change time
                     (FAT, exFAT), or whenever the evidence must be proven from its bytes alone
  --public-key FILE  the signing key's public key (PEM or DER) kept by the investigator
  --offline          with --dir and --public-key: make no AWS call at all (locks are then not checked)`,
  async run(ctx, values, positionals) {
    const caseId = parseCaseId(positionals[0]);
    const dir = stringValue(values, 'dir');
    const keyFile = stringValue(values, 'public-key');
    const offline = values.offline === true;
    const rehash = values.rehash === true;
    if (offline && (!dir || !keyFile)) throw new UsageError('--offline needs --dir and --public-key');
    if (rehash && !dir) throw new UsageError('--rehash needs --dir: in the bucket every object is read');
    const { publicKeyFromFile, verifyCase } = await import('../verify.js');
    const { recordFolder } = await import('../get-record.js');
    let publicKeyDer: Uint8Array | undefined;
    if (keyFile) {
      const bytes = await readFile(keyFile).catch(() => {
        throw new UsageError(`cannot read ${keyFile}`);
      });
      publicKeyDer = publicKeyFromFile(bytes);
    }
    const online = offline
      ? {}
      : await (async () => {
          const stack = await ctx.stack();
          return {
            s3: await ctx.aws.s3(),
            kms: await ctx.aws.kms(),
            bucket: stack.evidenceBucket,
            signingKeyArn: stack.signingKeyArn,
            ...(stack.addendumKeyArn ? { addendumKeyArn: stack.addendumKeyArn } : {}),
          };
        })();
    const report = await verifyCase(caseId, {
      ...online,
      ...(publicKeyDer ? { publicKeyDer } : {}),
      ...(dir ? { dir: resolve(dir), getRecords: recordFolder(), rehash } : {}),
      now: ctx.now(),
    });
    if (ctx.json) {
      ctx.io.out(jsonDocument(report));
      return report.ok ? 0 : 1;
    }
    const out = ctx.io.out;
    const colour = ctx.io.colour?.out;
    out(
      `Case ${caseId}: ${report.source === 'folder' ? `folder ${resolve(dir as string)}` : 'objects in the evidence bucket'}\n`,
    );
    for (const v of [...report.signature, ...report.manifest]) {
      out(`  ${paintVerdict(colour, mark(v).padEnd(11))} ${v.check.padEnd(20)} ${safe(v.detail, 400)}\n`);
    }
    out('\n');
    const line = (v: Verdict) =>
      out(
        `              ${paintVerdict(colour, mark(v).padEnd(11))} ${v.check.padEnd(9)} ${safe(v.detail, 400)}\n`,
      );
    for (const a of report.artifacts) {
      out(`  ${paintVerdict(colour, (a.ok ? 'PASS' : 'FAIL').padEnd(11))} ${safe(a.name, 80)}\n`);
      for (const v of [a.hash, ...(a.version ? [a.version] : []), a.lock]) line(v);
    }
    for (const u of report.unlisted) {
      out(
        `  ${paintVerdict(colour, (u.verdict.status === 'fail' ? 'FAIL' : 'NOT LISTED').padEnd(11))} ${safe(u.name, 80)}\n`,
      );
      line(u.verdict);
    }
    out(
      report.ok
        ? `\n${paintVerdict(colour, 'VERIFIED')}: the signature is valid and all ${report.artifacts.length} objects match the manifest${report.artifacts.every((a) => a.lock.status === 'pass') ? ' and are locked' : ''}.\n`
        : `\n${paintVerdict(colour, 'FAILED')}: ${report.problems.map((p) => safe(p, 200)).join('; ')}.\n`,
    );
    const trusted = report.artifacts.filter((a) => a.hashSource === 'get record').length;
    if (trusted > 0) {
      out(
        `${trusted} file(s) were not read again: cordon evidence get hashed them and they are unchanged since (--rehash reads them).\n`,
      );
    }
    return report.ok ? 0 : 1;
  },
};

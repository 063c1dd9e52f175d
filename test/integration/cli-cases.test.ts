import { beforeAll, describe, expect, inject, it } from 'vitest';
import { resetMoto } from '../../scripts/local/moto.js';
import { seedAccount } from '../../scripts/local/seed.js';
import { cordon, demoCase } from '../support/cli-fixtures.js';

const endpoint = inject('motoEndpoint');
let demo: Awaited<ReturnType<typeof demoCase>>;

beforeAll(async () => {
  await resetMoto(endpoint);
  demo = await demoCase(endpoint);
}, 120_000);

interface CaseRow {
  caseId: string;
  instanceId: string;
  status: string;
  holdsInstance: boolean;
}

/** The case status a finished case carries: a completed case is `contained`; the others keep their outcome. */
const statusOf = (outcome: string) => (outcome === 'completed' ? 'contained' : outcome);

describe('cordon status', () => {
  it('shows the case from the table with every action on its timeline', async () => {
    const { code, stdout } = await cordon(endpoint, ['status', demo.caseId, '--json']);

    expect(code).toBe(0);
    const status = JSON.parse(stdout) as {
      case: { caseId: string; instanceId: string; status: string };
      timeline: { step: string; action: string; requestId?: string }[];
      execution?: { status: string; note?: string };
    };
    expect(status.case).toMatchObject({
      caseId: demo.caseId,
      instanceId: demo.seeded.instanceId,
      status: statusOf(demo.report.outcome),
    });
    expect(status.timeline.map((e) => e.step)).toEqual(
      expect.arrayContaining(['intake-finding', 'triage-instance', 'isolate-instance', 'archive-evidence']),
    );
    expect(
      status.timeline.some(
        (e) => e.step === 'isolate-instance' && e.action.startsWith('ec2:') && e.requestId,
      ),
    ).toBe(true);
    // The emulated run happened in-process: Step Functions has no history of it, and says so.
    expect(status.execution).toMatchObject({ status: 'unknown' });
  });

  it('prints the case and its timeline for people', async () => {
    const { code, stdout } = await cordon(endpoint, ['status', demo.caseId]);

    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`^Case\\s+${demo.caseId}$`, 'm'));
    expect(stdout).toMatch(/^Timeline \(\d+ events; --json has every value whole\)$/m);
  });

  it('names an unknown case and exits 3', async () => {
    const unknown = '20250101T000000Z-i-0123456789abcdef0-0000';

    const { code, stderr, stdout } = await cordon(endpoint, ['status', unknown]);

    expect(code).toBe(3);
    expect(stdout).toBe('');
    expect(stderr).toContain(`There is no case ${unknown} in the table cordon-cases-dev.`);
    expect(stderr).not.toMatch(/\bat \w+ \(/);
  });
});

describe('cordon cases', () => {
  it('lists the demo case with its instance and status', async () => {
    const { code, stdout } = await cordon(endpoint, ['cases', '--json']);

    expect(code).toBe(0);
    const rows = JSON.parse(stdout) as CaseRow[];
    expect(rows).toEqual([
      expect.objectContaining({
        caseId: demo.caseId,
        instanceId: demo.seeded.instanceId,
        holdsInstance: true,
      }),
    ]);
  });

  it("finds an instance's cases through the index", async () => {
    const { code, stdout } = await cordon(endpoint, [
      'cases',
      '--instance',
      demo.seeded.instanceId,
      '--json',
    ]);

    expect(code).toBe(0);
    expect((JSON.parse(stdout) as CaseRow[]).map((r) => r.caseId)).toEqual([demo.caseId]);
  });

  it('prints a table for people', async () => {
    const { code, stdout } = await cordon(endpoint, ['cases']);

    expect(code).toBe(0);
    expect(stdout).toMatch(
      /^CASE\s+INSTANCE\s+ACCOUNT\s+REGION\s+STATUS\s+OUTCOME\s+HOLDS\s+OPENED\s+TRIGGER$/m,
    );
    expect(stdout).toContain(demo.caseId);
  });
});

describe('cordon start', () => {
  it('runs the forensic workflow in-process on the emulator, one line per step, and names the new case', async () => {
    const seeded = await seedAccount(endpoint, { vpcEndpoints: true });

    const { code, stdout, stderr } = await cordon(endpoint, [
      'start',
      '--instance',
      seeded.instanceId,
      '--reason',
      'beaconing seen by the IDS',
    ]);

    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/^\s+succeeded\s+Intake Finding\s+/m);
    expect(stdout).toMatch(/^\s+succeeded\s+Isolate Instance\s+/m);
    expect(stdout).toMatch(/^\s+succeeded\s+Archive Evidence\s+/m);
    const caseId = /^Case (\S+): (COMPLETED|PARTIAL)/m.exec(stdout)?.[1];
    expect(caseId).toContain(seeded.instanceId);
    const status = JSON.parse((await cordon(endpoint, ['status', caseId as string, '--json'])).stdout) as {
      case: { trigger: { source: string; reason: string; requestedBy: string } };
    };
    expect(status.case.trigger).toMatchObject({
      source: 'manual',
      reason: 'beaconing seen by the IDS',
      requestedBy: 'arn:aws:sts::123456789012:user/moto',
    });
  });

  it('refuses a malformed instance id before any call', async () => {
    const { code, stderr } = await cordon(endpoint, ['start', '--instance', 'i-nothex', '--reason', 'x']);

    expect(code).toBe(2);
    expect(stderr).toContain('--instance not an EC2 instance id');
  });
});

describe('cordon release', () => {
  it('refuses to release without confirmation when nobody can answer', async () => {
    const { code, stderr } = await cordon(endpoint, ['release', demo.caseId]);

    expect(code).toBe(2);
    expect(stderr).toContain('pass --yes');
    const rows = JSON.parse((await cordon(endpoint, ['cases', '--json'])).stdout) as CaseRow[];
    expect(rows.find((r) => r.caseId === demo.caseId)?.status).toBe(statusOf(demo.report.outcome));
  });

  it('does nothing when the person answers no', async () => {
    const { code, asked } = await cordon(endpoint, ['release', demo.caseId], { answer: 'n' });

    expect(code).toBe(1);
    expect(asked[0]).toContain(`Release ${demo.seeded.instanceId}`);
    const rows = JSON.parse((await cordon(endpoint, ['cases', '--json'])).stdout) as CaseRow[];
    expect(rows.find((r) => r.caseId === demo.caseId)?.holdsInstance).toBe(true);
  });

  it('runs the release workflow after a yes, and the case no longer holds its instance', async () => {
    const { code, stdout, stderr } = await cordon(endpoint, ['release', demo.caseId], { answer: 'yes' });

    expect(code, `${stdout}${stderr}`).toBe(0);
    expect(stdout).toMatch(/^\s+succeeded\s+Release Instance\s+/m);
    expect(stdout).toMatch(new RegExp(`^Release of ${demo.caseId}: RELEASED`, 'm'));
    const open = JSON.parse((await cordon(endpoint, ['cases', '--open', '--json'])).stdout) as CaseRow[];
    expect(open.map((r) => r.caseId)).not.toContain(demo.caseId);
    const all = JSON.parse((await cordon(endpoint, ['cases', '--json'])).stdout) as CaseRow[];
    expect(all.find((r) => r.caseId === demo.caseId)?.status).toBe('released');
  });

  it('changes nothing when the case is released already, and says so with exit 0', async () => {
    const timeline = async () =>
      (
        JSON.parse((await cordon(endpoint, ['status', demo.caseId, '--json'])).stdout) as {
          timeline: unknown[];
        }
      ).timeline.length;
    const before = await timeline();

    const { code, stdout, stderr } = await cordon(endpoint, ['release', demo.caseId, '--yes']);

    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toBe(`Case ${demo.caseId}: already released; nothing was changed.\n`);
    expect(await timeline()).toBe(before);
  });
});

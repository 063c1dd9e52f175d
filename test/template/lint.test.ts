import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { loadTemplate, repoRoot } from '../support/template-model.js';

interface LintFinding {
  Level: 'Error' | 'Warning' | 'Informational';
  Message: string;
  Rule: { Id: string };
  Location: { Path: (string | number)[] | null };
}

/**
 * Warnings left in place on purpose, each with the reason. Anything else cfn-lint reports fails.
 * - W3005: serverless writes `DependsOn: <role>` on every function and state machine although their
 *   `Role` GetAtt already orders them; the packager's output, not ours to change.
 * - W8003: serverless resolves `params` at package time, so every condition in a packaged template (all
 *   are built on params; the template has no CloudFormation Parameters) is a comparison of literals by
 *   the time cfn-lint reads it. It still selects what one stage deploys.
 */
const justifiedWarnings: { rule: string; path: RegExp }[] = [
  { rule: 'W3005', path: /^Resources\/\w+(LambdaFunction|StateMachine)\/DependsOn\// },
  { rule: 'W8003', path: /^Conditions\/\w+(\/|$)/ },
];

/**
 * Checks switched off inside the template (resource `Metadata.cfn-lint`), each with the reason.
 * - SecurityHubActionTarget E3006: AWS::SecurityHub::ActionTarget is a documented CloudFormation type
 *   that the installed cfn-lint's resource specification does not list yet; triggers.test.ts checks
 *   its properties instead.
 */
const justifiedSuppressions: Record<string, string[]> = {
  SecurityHubActionTarget: ['E3006'],
};

function cfnLint(path: string): LintFinding[] {
  const run = spawnSync('cfn-lint', ['--format', 'json', '--', path], { encoding: 'utf8' });
  if (run.error) throw new Error(`cfn-lint could not run (is it installed?): ${run.error.message}`);
  // Exit codes are bit flags (2 errors, 4 warnings, 8 informational); 1 is cfn-lint failing itself.
  if (run.status === 1 || run.stdout.trim() === '') throw new Error(`cfn-lint failed:\n${run.stderr}`);
  return JSON.parse(run.stdout) as LintFinding[];
}

function unexplained(findings: LintFinding[]): string[] {
  return findings
    .filter((f) => {
      if (f.Level === 'Error') return true;
      const path = (f.Location.Path ?? []).join('/');
      return !justifiedWarnings.some((w) => w.rule === f.Rule.Id && w.path.test(path));
    })
    .map((f) => `${f.Level} ${f.Rule.Id} at ${(f.Location.Path ?? []).join('/')}: ${f.Message}`);
}

describe('cfn-lint', () => {
  it('finds no error and no unexplained warning in the packaged dev template', () => {
    const findings = cfnLint(inject('cfnTemplates').dev);

    expect(unexplained(findings)).toEqual([]);
  });

  it('finds no error and no unexplained warning in the packaged prod template', () => {
    const findings = cfnLint(inject('cfnTemplates').prod);

    expect(unexplained(findings)).toEqual([]);
  });

  it('finds nothing at all in the member-account template', () => {
    const findings = cfnLint(resolve(repoRoot, 'resources/member-account.yml'));

    expect(findings.map((f) => `${f.Rule.Id}: ${f.Message}`)).toEqual([]);
  });

  it('is switched off inside the templates only where a reason is written down', () => {
    const suppressed = Object.fromEntries(
      Object.entries(loadTemplate(inject('cfnTemplates').prod).Resources)
        .map(([id, r]) => {
          const lint = r.Metadata?.['cfn-lint'] as { config?: { ignore_checks?: string[] } } | undefined;
          return [id, lint?.config?.ignore_checks] as const;
        })
        .filter(([, checks]) => checks !== undefined),
    );

    expect(suppressed).toEqual(justifiedSuppressions);
  });

  it('reads conditions made of literals only: the packaged template declares no Parameters', () => {
    const template = loadTemplate(inject('cfnTemplates').prod) as { Parameters?: unknown };

    expect(template.Parameters).toBeUndefined();
  });
});

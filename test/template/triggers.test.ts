import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { type EventPattern, type Json, matchesPattern } from '../support/template-event-pattern.js';
import {
  type CfnTemplate,
  conditionHolds,
  loadTemplate,
  paramFor,
  refersTo,
  repoRoot,
  resource,
  resourcesOfType,
} from '../support/template-model.js';

const templates = {
  dev: loadTemplate(inject('cfnTemplates').dev),
  prod: loadTemplate(inject('cfnTemplates').prod),
};

type JsonObject = { [key: string]: Json };

/** Real events kept verbatim by the project (see their SOURCES.md); never edited here. */
function realEvent(file: string): JsonObject {
  return JSON.parse(
    readFileSync(resolve(repoRoot, '../shared/fixtures/real-events', file), 'utf8'),
  ) as JsonObject;
}

/** A GuardDuty finding as EventBridge delivers it: the finding is the envelope's `detail`. */
function guardDutyEvent(detail: Json, region = 'us-east-1'): JsonObject {
  return {
    version: '0',
    id: 'c8c4daa7-a20c-2f03-0070-b7393dd542ad',
    'detail-type': 'GuardDuty Finding',
    source: 'aws.guardduty',
    account: '123456789012',
    time: '2024-01-01T00:00:00Z',
    region,
    resources: [],
    detail,
  };
}

/** A Security Hub finding as EventBridge delivers an import: a one-finding `findings` array. */
function securityHubImported(finding: Json): JsonObject {
  return {
    version: '0',
    id: '1622bd23-7237-fdec-8fb0-a019cccfd3cb',
    'detail-type': 'Security Hub Findings - Imported',
    source: 'aws.securityhub',
    account: '123456789012',
    time: '2024-01-01T00:00:00Z',
    region: 'us-east-1',
    resources: [],
    detail: { findings: [finding] },
  };
}

/**
 * A rule's pattern as EventBridge would hold it once deployed in the event's account and region: the
 * custom action target's ARN is what `Fn::GetAtt ActionTargetArn` returns there.
 */
function deployedPattern(template: CfnTemplate, ruleId: string, event: JsonObject): EventPattern {
  const actionId = resource(template, 'SecurityHubActionTarget').Properties?.Id;
  const actionArn = `arn:aws:securityhub:${event.region}:${event.account}:action/custom/${actionId}`;
  const text = JSON.stringify(resource(template, ruleId).Properties?.EventPattern).replaceAll(
    JSON.stringify({ 'Fn::GetAtt': ['SecurityHubActionTarget', 'ActionTargetArn'] }),
    JSON.stringify(actionArn),
  );
  if (text.includes('Fn::') || text.includes('"Ref"'))
    throw new Error(`Unresolved intrinsic in ${ruleId}: ${text}`);
  return JSON.parse(text) as EventPattern;
}

const sshBruteForceSample = realEvent('gd_eb_partial_sshbruteforce_sample.json');
const canary = realEvent('gd_detail_canary_ec2_stateless_integtest.json');

describe('the GuardDuty rule', () => {
  it.each(['dev', 'prod'] as const)('in %s starts a case at the stage’s minSeverity and above', (stage) => {
    const pattern = resource(templates[stage], 'GuardDutyInstanceFindingRule').Properties?.EventPattern as {
      detail: { severity: unknown };
    };

    expect(pattern.detail.severity).toEqual([{ numeric: ['>=', paramFor(stage, 'minSeverity')] }]);
  });

  it('matches a real GuardDuty instance finding whose severity reaches the threshold', () => {
    const event = guardDutyEvent(sshBruteForceSample.detail ?? null, String(sshBruteForceSample.region));
    const pattern = deployedPattern(templates.dev, 'GuardDutyInstanceFindingRule', event);

    expect(paramFor('dev', 'minSeverity')).toBeLessThanOrEqual(2);
    expect(matchesPattern(pattern, event)).toBe(true);
  });

  it('matches a second real instance finding, with a different shape, above the threshold', () => {
    const event = guardDutyEvent(canary);
    const pattern = deployedPattern(templates.dev, 'GuardDutyInstanceFindingRule', event);

    expect(matchesPattern(pattern, event)).toBe(true);
  });

  it('does not match the same real finding where its severity is below the threshold', () => {
    const event = guardDutyEvent(sshBruteForceSample.detail ?? null, String(sshBruteForceSample.region));
    const pattern = deployedPattern(templates.prod, 'GuardDutyInstanceFindingRule', event);

    expect(paramFor('prod', 'minSeverity')).toBeGreaterThan(2);
    expect(matchesPattern(pattern, event)).toBe(false);
  });

  it.each([
    'gd_detail_REJECT_accesskey_recon_maliciousipcaller_custom_sample_archived.json',
    'gd_detail_REJECT_s3bucket_pentest_parrotlinux_sample_archived.json',
  ])('does not match a real finding on something other than an instance (%s)', (file) => {
    const event = guardDutyEvent(realEvent(file));
    const pattern = deployedPattern(templates.dev, 'GuardDutyInstanceFindingRule', event);

    expect(matchesPattern(pattern, event)).toBe(false);
  });

  it('does not match an instance finding that a responder archived', () => {
    const archived = { ...canary, service: { ...(canary.service as JsonObject), archived: true } };
    const event = guardDutyEvent(archived);
    const pattern = deployedPattern(templates.dev, 'GuardDutyInstanceFindingRule', event);

    expect(matchesPattern(pattern, event)).toBe(false);
  });
});

describe('the Security Hub custom action rule', () => {
  const matching = realEvent('sh_eb_custom_action_ec2_instance_afsbp_ec2_8.json');
  const mismatch = realEvent('sh_eb_custom_action_REJECT_cloudtrail_1_mismatch.json');

  it('creates the custom action with the configured id', () => {
    const target = resource(templates.prod, 'SecurityHubActionTarget');

    expect(target.Type).toBe('AWS::SecurityHub::ActionTarget');
    expect(target.Properties?.Id).toBe(paramFor('prod', 'securityHubActionId'));
    // Security Hub limits the name to 20 characters and the id to 20 alphanumerics.
    expect(String(target.Properties?.Name).length).toBeLessThanOrEqual(20);
    expect(String(target.Properties?.Id)).toMatch(/^[A-Za-z0-9]{1,20}$/);
  });

  it('matches the real event sent by the ForensicTriageAction custom action', () => {
    const pattern = deployedPattern(templates.prod, 'SecurityHubCustomActionRule', matching);

    expect(matchesPattern(pattern, matching)).toBe(true);
  });

  it('does not match the real event of another workflow’s custom action', () => {
    const pattern = deployedPattern(templates.prod, 'SecurityHubCustomActionRule', mismatch);

    expect(matchesPattern(pattern, mismatch)).toBe(false);
  });

  it.each(['dev', 'prod'] as const)(
    'in %s is created only where the stage asks for it, which it does not by default',
    (stage) => {
      expect(resource(templates[stage], 'SecurityHubActionTarget').Condition).toBe(
        'AcceptSecurityHubCustomAction',
      );
      expect(templates[stage].Conditions?.AcceptSecurityHubCustomAction).toEqual({
        'Fn::Equals': [paramFor(stage, 'acceptSecurityHubCustomAction'), 'true'],
      });
      expect(conditionHolds(templates[stage], 'AcceptSecurityHubCustomAction')).toBe(false);
    },
  );

  it('takes along everything that refers to the custom action, so a stage without it still deploys', () => {
    const dependents = Object.entries(templates.prod.Resources).filter(([, r]) =>
      refersTo(r.Properties, 'SecurityHubActionTarget'),
    );

    expect(dependents.map(([id]) => id)).toEqual(['SecurityHubCustomActionRule']);
    for (const [, r] of dependents) expect(r.Condition).toBe('AcceptSecurityHubCustomAction');
    expect(refersTo(templates.prod.Outputs, 'SecurityHubActionTarget')).toBe(false);
  });
});

describe('the Security Hub imported-findings rule', () => {
  const guardDutyAsff = realEvent('gd_asff_sshbruteforce_real_count74_from_docs.json');
  const complianceFinding = (
    (realEvent('sh_eb_custom_action_ec2_instance_afsbp_ec2_8.json').detail as JsonObject).findings as Json[]
  )[0] as Json;

  it('is deployed only when acceptSecurityHubImported is true, which it is not by default', () => {
    const rule = resource(templates.prod, 'SecurityHubImportedRule');

    expect(rule.Condition).toBe('AcceptSecurityHubImported');
    expect(conditionHolds(templates.prod, 'AcceptSecurityHubImported')).toBe(false);
  });

  it('matches a real threat finding imported on an EC2 instance', () => {
    const event = securityHubImported(guardDutyAsff);
    const pattern = deployedPattern(templates.prod, 'SecurityHubImportedRule', event);

    expect(matchesPattern(pattern, event)).toBe(true);
  });

  it('does not match a real compliance-check finding on an EC2 instance', () => {
    const event = securityHubImported(complianceFinding);
    const pattern = deployedPattern(templates.prod, 'SecurityHubImportedRule', event);

    expect(matchesPattern(pattern, event)).toBe(false);
  });

  it('does not match a real imported finding whose resource is the account', () => {
    const event = realEvent('sh_eb_imported_REJECT_afsbp_ec2_7_awsaccount_resource.json');
    const pattern = deployedPattern(templates.prod, 'SecurityHubImportedRule', event);

    expect(matchesPattern(pattern, event)).toBe(false);
  });
});

describe('every instance trigger rule', () => {
  const instanceRules = [
    'GuardDutyInstanceFindingRule',
    'SecurityHubCustomActionRule',
    'SecurityHubImportedRule',
  ];
  const rules = resourcesOfType(templates.prod, 'AWS::Events::Rule').filter(([id]) =>
    instanceRules.includes(id),
  );

  it('exists for GuardDuty, the custom action and imported findings', () => {
    expect(rules.map(([id]) => id).sort()).toEqual([...instanceRules].sort());
  });

  it.each(rules)(
    '%s starts the forensic state machine with the trigger role, retries, then dead-letters',
    (_id, rule) => {
      expect(rule.Properties?.Targets).toEqual([
        expect.objectContaining({
          Arn: { Ref: 'ForensicsStateMachine' },
          RoleArn: { 'Fn::GetAtt': ['TriggerRole', 'Arn'] },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': ['TriggerDeadLetterQueue', 'Arn'] } },
          RetryPolicy: expect.objectContaining({ MaximumRetryAttempts: expect.any(Number) }),
        }),
      ]);
    },
  );

  it('dead-letters into an encrypted queue whose depth alarms the alert topic', () => {
    const queue = resource(templates.prod, 'TriggerDeadLetterQueue');
    const alarm = resource(templates.prod, 'TriggerDeadLetterAlarm');

    expect(queue.Properties?.SqsManagedSseEnabled ?? queue.Properties?.KmsMasterKeyId).toBeTruthy();
    expect(alarm.Properties).toMatchObject({
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['TriggerDeadLetterQueue', 'QueueName'] } }],
      AlarmActions: [{ Ref: 'AlertTopic' }],
    });
  });
});

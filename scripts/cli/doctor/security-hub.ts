import { DescribeHubCommand } from '@aws-sdk/client-securityhub';
import { awsErrorCode } from '../../../functions/core/errors.js';
import type { RegionalClients } from '../aws.js';
import { safe } from '../output.js';
import { allow, type Check, guarded } from './check.js';

/**
 * The triggers a deploy of the stage creates that depend on a service being on in the stack's region.
 * The GuardDuty rules have no condition: every stage has them, and the GuardDuty check covers them.
 */
export interface StageTriggers {
  stage: string;
  /** acceptSecurityHubCustomAction: the stack creates the custom action, which Security Hub must host. */
  securityHubCustomAction: boolean;
  /** acceptSecurityHubImported: a rule on findings Security Hub imports. */
  securityHubImported: boolean;
}

/** Which triggers a stage turns on, from its params as serverless resolves them (strings compared to 'true'). */
export function triggersOf(stage: string, params: Record<string, unknown>): StageTriggers {
  const on = (name: string) => String(params[name] ?? '') === 'true';
  return {
    stage,
    securityHubCustomAction: on('acceptSecurityHubCustomAction'),
    securityHubImported: on('acceptSecurityHubImported'),
  };
}

/**
 * Security Hub, where the stage's triggers need it: the custom action is a resource the stack creates,
 * so without Security Hub the deploy fails; imported findings would simply never arrive.
 */
export async function checkSecurityHub(
  clients: RegionalClients,
  region: string,
  triggers: StageTriggers,
): Promise<Check> {
  const base = { check: 'Security Hub', scope: region };
  const uses = [
    triggers.securityHubCustomAction ? 'the custom action (acceptSecurityHubCustomAction)' : '',
    triggers.securityHubImported ? 'imported findings (acceptSecurityHubImported)' : '',
  ].filter(Boolean);
  if (!uses.length) {
    return {
      ...base,
      status: 'pass',
      detail: `not needed: stage ${triggers.stage} turns on no Security Hub trigger`,
      fix: '',
    };
  }
  return guarded(base, allow('securityhub:DescribeHub'), async () => {
    try {
      const hub = await clients.securityhub.send(new DescribeHubCommand({}));
      return {
        ...base,
        status: 'pass',
        detail: `enabled${hub.SubscribedAt ? ` since ${safe(hub.SubscribedAt)}` : ''}, for ${uses.join(' and ')}`,
        fix: '',
      };
    } catch (error) {
      // Security Hub's answer for an account that has not enabled it is a verdict; a missing IAM
      // permission is AccessDeniedException, which stays "could not check".
      if (awsErrorCode(error) !== 'InvalidAccessException') throw error;
      const consequence = triggers.securityHubCustomAction
        ? 'the deploy cannot create the custom action and rolls back'
        : 'no imported finding can start a case';
      return {
        ...base,
        status: 'fail',
        detail: `not enabled, but stage ${triggers.stage} uses ${uses.join(' and ')}: ${consequence}`,
        fix: `aws securityhub enable-security-hub --region ${region}, or set ${[
          triggers.securityHubCustomAction ? 'acceptSecurityHubCustomAction' : '',
          triggers.securityHubImported ? 'acceptSecurityHubImported' : '',
        ]
          .filter(Boolean)
          .join(' and ')} to 'false' for this stage`,
      };
    }
  });
}

import { GetDetectorCommand, ListDetectorsCommand } from '@aws-sdk/client-guardduty';
import type { RegionalClients } from '../aws.js';
import { safe } from '../output.js';
import { allow, type Check, guarded } from './check.js';

/** GuardDuty: an enabled detector in the region, or no finding can start a case there. */
export async function checkGuardDuty(clients: RegionalClients, region: string): Promise<Check> {
  const base = { check: 'GuardDuty', scope: region };
  return guarded(base, allow('guardduty:ListDetectors', 'guardduty:GetDetector'), async () => {
    const ids = (await clients.guardduty.send(new ListDetectorsCommand({}))).DetectorIds ?? [];
    const id = ids[0];
    if (!id) {
      return {
        ...base,
        status: 'fail',
        detail: 'no detector: GuardDuty is off, so no finding can start a case here',
        fix: `aws guardduty create-detector --enable --region ${region}`,
      };
    }
    const detector = await clients.guardduty.send(new GetDetectorCommand({ DetectorId: id }));
    return detector.Status === 'ENABLED'
      ? { ...base, status: 'pass', detail: `detector ${safe(id)} is enabled`, fix: '' }
      : {
          ...base,
          status: 'fail',
          detail: `detector ${safe(id)} is ${safe(detector.Status ?? 'not enabled')}`,
          fix: `aws guardduty update-detector --detector-id ${safe(id)} --enable --region ${region}`,
        };
  });
}

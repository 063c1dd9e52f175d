import { DescribeTrailsCommand, GetTrailStatusCommand, type Trail } from '@aws-sdk/client-cloudtrail';
import type { RegionalClients } from '../aws.js';
import { safe } from '../output.js';
import { allow, type Check, guarded, list } from './check.js';

/** CloudTrail: at least one multi-region trail that is logging now. */
export async function checkCloudTrail(clients: RegionalClients, homeRegion: string): Promise<Check> {
  const base = { check: 'CloudTrail', scope: 'all regions' };
  const fix =
    'Create a multi-region trail and start it: aws cloudtrail create-trail --name cordon-audit --s3-bucket-name BUCKET --is-multi-region-trail, then aws cloudtrail start-logging --name cordon-audit';
  return guarded(base, allow('cloudtrail:DescribeTrails', 'cloudtrail:GetTrailStatus'), async () => {
    const trails =
      (await clients.cloudtrail.send(new DescribeTrailsCommand({ includeShadowTrails: true }))).trailList ??
      [];
    const multi = trails.filter((t) => t.IsMultiRegionTrail);
    const logging: string[] = [];
    for (const t of multi) {
      if (await isLogging(clients, t, homeRegion)) logging.push(t.Name ?? t.TrailARN ?? '?');
    }
    if (logging.length)
      return {
        ...base,
        status: 'pass',
        detail: `multi-region trail ${safe(logging[0])} is logging`,
        fix: '',
      };
    if (multi.length) {
      const name = safe(multi[0]?.Name);
      return {
        ...base,
        status: 'fail',
        detail: `the multi-region trail ${name} is not logging`,
        fix: `aws cloudtrail start-logging --name ${name}`,
      };
    }
    const single = trails.map((t) => `${safe(t.Name)} (${safe(t.HomeRegion)})`);
    return {
      ...base,
      status: 'fail',
      detail: single.length
        ? `no multi-region trail; only single-region trails: ${list(single)}`
        : 'no trail at all: API calls in this account are not recorded',
      fix,
    };
  });
}

async function isLogging(clients: RegionalClients, trail: Trail, homeRegion: string): Promise<boolean> {
  // A shadow trail (another region's, or an organization's) is named by its ARN; a local one by name.
  const local = trail.HomeRegion === homeRegion && !trail.IsOrganizationTrail;
  const name = local ? (trail.Name ?? trail.TrailARN) : (trail.TrailARN ?? trail.Name);
  const status = await clients.cloudtrail.send(new GetTrailStatusCommand({ Name: name }));
  return status.IsLogging === true;
}

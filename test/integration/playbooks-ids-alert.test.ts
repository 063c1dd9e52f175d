import { beforeAll, describe, expect, inject, it } from 'vitest';
import { type IdsPlaybookReport, runIdsPlaybook } from '../../scripts/playbooks/ids-alert.js';

/**
 * The IDS-triggered response against the emulated account: the EVE fixtures (alerts, other records,
 * malformed lines) delivered as a CloudWatch Logs subscription delivers them to the real handler,
 * the instance found in moto by its private IP, the forensic execution recorded by moto.
 */
const endpoint = inject('motoEndpoint');
let report: IdsPlaybookReport;

beforeAll(async () => {
  report = await runIdsPlaybook({ endpoint, stop: true });
}, 120_000);

describe('the Suricata alert playbook on the emulated account', () => {
  it('reads every alert line and counts the malformed ones by reason without failing the batch', () => {
    expect(report.result).toMatchObject({ received: report.lines, alerts: 6, other: 3, malformed: 8 });
    expect(report.result.refusals).toEqual({
      'not JSON': 2,
      'not a JSON object': 1,
      'bad field src_ip': 2,
      'bad field alert.severity': 1,
      'no event_type': 2,
    });
  });

  it('starts the forensic workflow once on the instance holding the alert address', () => {
    expect(report.executions).toHaveLength(1);
    expect(report.executions[0]?.input).toMatchObject({
      instanceId: report.network.instanceId,
      accountId: '123456789012',
      region: 'us-east-1',
      requestedBy: 'ids:suricata',
    });
  });

  it('names the execution so that the instance is stopped once its evidence is sealed', () => {
    expect(report.executions[0]?.name).toMatch(
      new RegExp(`^ids-stop-${report.network.instanceId}-[0-9a-f]{16}$`),
    );
  });

  it('leaves out alerts below the severity threshold and alerts the IDS blocked inline', () => {
    expect(report.result.belowSeverity).toBe(2);
    expect(report.result.blocked).toBe(1);
  });
});

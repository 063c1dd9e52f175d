import { beforeAll, describe, expect, inject, it } from 'vitest';
import { type IdsPlaybookReport, runIdsPlaybook } from '../../scripts/playbooks/ids-alert.js';

/**
 * The IDS-triggered response against the emulated account: the EVE fixtures (alerts, other records,
 * malformed lines) delivered as a CloudWatch Logs subscription delivers them to the real handler,
 * the instance found in moto by its private IP, the forensic execution recorded by moto, the
 * notification read from the queue subscribed to the alert topic.
 */
const endpoint = inject('motoEndpoint');
let report: IdsPlaybookReport;

beforeAll(async () => {
  report = await runIdsPlaybook({ endpoint, stop: true });
}, 120_000);

describe('the Suricata alert playbook on the emulated account', () => {
  it('reads every alert line and counts the malformed ones by reason without failing the batch', () => {
    expect(report.result).toMatchObject({ received: report.lines, alerts: 7, other: 3, malformed: 8 });
    expect(report.result.refusals).toEqual({
      'not JSON': 2,
      'not a JSON object': 1,
      'bad field src_ip': 2,
      'bad field alert.severity': 1,
      'no event_type': 2,
    });
  });

  it('starts the forensic workflow once on the instance the outbound alerts come from', () => {
    expect(report.executions).toHaveLength(1);
    expect(report.executions[0]?.input).toMatchObject({
      instanceId: report.network.instanceId,
      accountId: '123456789012',
      region: 'us-east-1',
      requestedBy: 'ids:suricata',
    });
    expect((report.executions[0]?.input as { reason?: string } | undefined)?.reason).toContain(
      `${report.network.privateIp} -> 198.51.100.77`,
    );
  });

  it('starts nothing for the inbound alerts and notifies them once, naming the instance', () => {
    expect(report.result.destinationOnly).toBe(3);
    expect(report.result.notified).toEqual([report.network.instanceId]);
    expect(report.alerts).toHaveLength(1);
    expect(report.result.messageId).toEqual(expect.any(String));
    const body = report.alerts[0]?.body ?? '';
    expect(body).toContain('NO RESPONSE STARTED FROM THESE ALERTS');
    expect(body).toContain(
      `${report.network.instanceId}: inbound; a response was started on it for an alert it sent`,
    );
    expect(body).toContain(`203.0.113.50 -> ${report.network.privateIp}`);
    expect(body).toContain('sid 1000005 rev 3, severity 1, category Web Application Attack');
  });

  it('names the execution so that the instance is stopped once its evidence is sealed', () => {
    expect(report.executions[0]?.name).toMatch(
      new RegExp(`^ids-stop-${report.network.instanceId}-[0-9a-f]{16}$`),
    );
  });

  it('leaves out alerts below the severity threshold and alerts the IDS blocked inline', () => {
    expect(report.result.belowSeverity).toBe(1);
    expect(report.result.blocked).toBe(1);
  });
});

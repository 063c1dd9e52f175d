/**
 * Isolate's action: every interface in Cordon's isolation group, its connection-tracking timeouts
 * shortened, its Elastic IPs taken off, and network ACL denies for the finding's addresses.
 */
import {
  AssociateAddressCommand,
  DeleteNetworkAclEntryCommand,
  DescribeAddressesCommand,
  DescribeNetworkAclsCommand,
  DescribeNetworkInterfacesCommand,
  ModifyNetworkInterfaceAttributeCommand,
  type NetworkAcl,
} from '@aws-sdk/client-ec2';
import { z } from 'zod';
import { caseIdSchema } from '../case.js';
import {
  allocationIdSchema,
  changeKeys,
  codeOf,
  eniIdSchema,
  groupIdSchema,
  networkAclIdSchema,
  vpcIdSchema,
} from '../containment.js';
import { describeError } from '../errors.js';
import { containmentAction, type ReleaseContext } from './action.js';

// Every entry is written BEFORE the change it describes is made, so that a step that dies half-way
// still leaves Release a record of everything it may have applied; Release compares each entry with
// the live state and only restores what still differs.

const conntrackSchema = z.object({
  tcpEstablishedTimeout: z.number().int().optional(),
  udpStreamTimeout: z.number().int().optional(),
  udpTimeout: z.number().int().optional(),
});
export type Conntrack = z.infer<typeof conntrackSchema>;

export const isolateChangesSchema = z.object({
  previousCaseId: caseIdSchema.optional(),
  groups: z.array(
    z.object({ vpcId: vpcIdSchema, conversionGroupId: groupIdSchema, isolationGroupId: groupIdSchema }),
  ),
  enis: z.array(
    z.object({
      networkInterfaceId: eniIdSchema,
      vpcId: vpcIdSchema,
      /** null when the ENI already held Cordon's groups and no earlier record named its own. */
      originalGroups: z.array(groupIdSchema).nullable(),
      /** Connection-tracking timeouts before Cordon shortened them; null: the interface's defaults. */
      originalConntrack: conntrackSchema.nullable().optional(),
      convertedAt: z.string().optional(),
    }),
  ),
  elasticIps: z.array(
    z.object({
      allocationId: allocationIdSchema,
      publicIp: z.ipv4(),
      networkInterfaceId: eniIdSchema,
      privateIpAddress: z.ipv4(),
    }),
  ),
  naclEntries: z.array(
    z.object({
      networkAclId: networkAclIdSchema,
      ruleNumber: z.number().int().min(1).max(32766),
      egress: z.boolean(),
      cidr: z.string().regex(/^[0-9a-f:.]+\/\d{1,3}$/),
    }),
  ),
});
export type IsolateChanges = z.infer<typeof isolateChangesSchema>;

export const isolateAction = containmentAction({
  key: changeKeys.isolate,
  step: 'isolate-instance',
  description: 'interface groups, connection-tracking timeouts, Elastic IPs, network ACL denies',
  schema: isolateChangesSchema,
  restore: restoreNetwork,
});

/** What EC2 documents as the interface defaults, for interfaces that had no timeouts of their own. */
const defaultConntrack = { TcpEstablishedTimeout: 432_000, UdpStreamTimeout: 180, UdpTimeout: 30 };

async function restoreNetwork(isolate: IsolateChanges, release: ReleaseContext): Promise<void> {
  const { clients, recorder, instance, attempt, gone } = release;
  const { ec2 } = clients;
  const aclIds = [...new Set(isolate.naclEntries.map((e) => e.networkAclId))];
  // One ACL per call: an ACL deleted since would fail a call naming several.
  const acls = await read(async () => {
    const found: NetworkAcl[] = [];
    for (const id of aclIds) {
      try {
        found.push(
          ...((await ec2.send(new DescribeNetworkAclsCommand({ NetworkAclIds: [id] }))).NetworkAcls ?? []),
        );
      } catch (error) {
        if (codeOf(error) !== 'InvalidNetworkAclID.NotFound') throw error;
      }
    }
    return found;
  });
  for (const entry of isolate.naclEntries) {
    const direction = entry.egress ? 'outbound' : 'inbound';
    await attempt(
      `network ACL deny ${entry.cidr} ${direction} (${entry.networkAclId} #${entry.ruleNumber})`,
      async () => {
        const live = acls()
          .find((a) => a.NetworkAclId === entry.networkAclId)
          ?.Entries?.find((e) => e.RuleNumber === entry.ruleNumber && e.Egress === entry.egress);
        // Gone already, or the number now holds someone else's rule: not ours to delete.
        const ours =
          live?.RuleAction === 'deny' &&
          (live.CidrBlock === entry.cidr || live.Ipv6CidrBlock?.toLowerCase() === entry.cidr);
        if (!ours) return 'unchanged';
        await recorder.run('ec2:DeleteNetworkAclEntry', `${entry.networkAclId}#${entry.ruleNumber}`, () =>
          ec2.send(
            new DeleteNetworkAclEntryCommand({
              NetworkAclId: entry.networkAclId,
              RuleNumber: entry.ruleNumber,
              Egress: entry.egress,
            }),
          ),
        );
        return 'restored';
      },
    );
  }

  const interfaces = await read(async () =>
    isolate.enis.length
      ? ((
          await ec2.send(
            new DescribeNetworkInterfacesCommand({
              Filters: [
                { Name: 'network-interface-id', Values: isolate.enis.map((e) => e.networkInterfaceId) },
              ],
            }),
          )
        ).NetworkInterfaces ?? [])
      : [],
  );
  for (const eni of isolate.enis) {
    const live = () => interfaces().find((n) => n.NetworkInterfaceId === eni.networkInterfaceId);
    await attempt(`${eni.networkInterfaceId} groups`, async () => {
      const n = live();
      if (!n) return { note: 'the interface no longer exists' };
      if (eni.originalGroups === null) {
        return { note: 'its own groups were never known (it held only Cordon groups when this case began)' };
      }
      const original = eni.originalGroups;
      const groups = (n.Groups ?? []).map((g) => g.GroupId);
      if (groups.length === original.length && original.every((g) => groups.includes(g))) return 'unchanged';
      await recorder.run(
        'ec2:ModifyNetworkInterfaceAttribute (original groups)',
        eni.networkInterfaceId,
        () =>
          ec2.send(
            new ModifyNetworkInterfaceAttributeCommand({
              NetworkInterfaceId: eni.networkInterfaceId,
              Groups: original,
            }),
          ),
      );
      return 'restored';
    });
    if (eni.originalConntrack !== undefined) {
      await attempt(`${eni.networkInterfaceId} connection-tracking timeouts`, async () => {
        if (!live()) return { note: 'the interface no longer exists' };
        const o = eni.originalConntrack;
        const spec = {
          TcpEstablishedTimeout: o?.tcpEstablishedTimeout ?? defaultConntrack.TcpEstablishedTimeout,
          UdpStreamTimeout: o?.udpStreamTimeout ?? defaultConntrack.UdpStreamTimeout,
          UdpTimeout: o?.udpTimeout ?? defaultConntrack.UdpTimeout,
        };
        try {
          await recorder.run(
            'ec2:ModifyNetworkInterfaceAttribute (conntrack timeouts)',
            eni.networkInterfaceId,
            () =>
              ec2.send(
                new ModifyNetworkInterfaceAttributeCommand({
                  NetworkInterfaceId: eni.networkInterfaceId,
                  ConnectionTrackingSpecification: spec,
                }),
              ),
          );
          return 'restored';
        } catch (error) {
          // Isolation could not shorten them either (not a Nitro instance, or the emulator): nothing to undo.
          const e = describeError(error);
          return { note: `not set (${e.name}): the interface keeps its current timeouts` };
        }
      });
    }
  }

  for (const eip of isolate.elasticIps) {
    await attempt(`Elastic IP ${eip.publicIp} on ${eip.networkInterfaceId}`, async () => {
      if (!instance) return gone;
      let address:
        | { AssociationId?: string; NetworkInterfaceId?: string; PrivateIpAddress?: string }
        | undefined;
      try {
        address = (await ec2.send(new DescribeAddressesCommand({ AllocationIds: [eip.allocationId] })))
          .Addresses?.[0];
      } catch (error) {
        if (codeOf(error) === 'InvalidAllocationID.NotFound')
          return { note: 'the address was released from the account' };
        throw error;
      }
      if (!address) return { note: 'the address was released from the account' };
      if (address.AssociationId) {
        return address.NetworkInterfaceId === eip.networkInterfaceId &&
          address.PrivateIpAddress === eip.privateIpAddress
          ? 'unchanged'
          : {
              note: `it is now associated with ${address.NetworkInterfaceId ?? 'another resource'}: not taken back`,
            };
      }
      await recorder.run('ec2:AssociateAddress', eip.publicIp, () =>
        ec2.send(
          new AssociateAddressCommand({
            AllocationId: eip.allocationId,
            NetworkInterfaceId: eip.networkInterfaceId,
            PrivateIpAddress: eip.privateIpAddress,
            AllowReassociation: false,
          }),
        ),
      );
      return 'restored';
    });
  }
}

/**
 * A read several restores depend on. Its failure must not stop the other restores: each restore that
 * needs it fails with the read's error instead, and the release says so.
 */
async function read<T>(load: () => Promise<T>): Promise<() => T> {
  try {
    const value = await load();
    return () => value;
  } catch (error) {
    return () => {
      throw error;
    };
  }
}

/**
 * THE EMULATED EBS DATA PLANE, a stand-in for what moto lacks, used by the tests and the demo only.
 * moto implements the EBS direct APIs but holds blocks only for snapshots written through them
 * (StartSnapshot, PutSnapshotBlock); a snapshot EC2 takes of a volume (Cordon's CreateSnapshots) has
 * none, because moto's volumes hold no data. This proxy sits in front of moto and answers
 * ListSnapshotBlocks and GetSnapshotBlock for such a snapshot with the blocks of the snapshot its
 * volume was created from, which is what EBS holds for a volume nothing has written to since: the
 * case for every volume the emulated account seeds (scripts/local/seed.ts writes their content
 * through the EBS direct APIs). Every other request goes to moto untouched, and every answer,
 * checksums included, is moto's own.
 */
import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeSnapshotsCommand, DescribeVolumesCommand, EC2Client } from '@aws-sdk/client-ec2';

export interface EmulatedEbs {
  /** Use this endpoint instead of moto's: it serves everything moto does. */
  endpoint: string;
  stop(): Promise<void>;
}

const blocksPath = /^\/snapshots\/(snap-[0-9a-f]+)\/blocks(\/\d+)?$/;

/** The region a SigV4 request is signed for, and whether it is signed for the `ebs` service. */
function ebsScope(req: IncomingMessage): string | undefined {
  const auth = String(req.headers.authorization ?? '');
  return /Credential=[^/]+\/\d{8}\/([a-z0-9-]+)\/ebs\/aws4_request/.exec(auth)?.[1];
}

export async function startEmulatedEbs(motoEndpoint: string): Promise<EmulatedEbs> {
  const moto = new URL(motoEndpoint);
  const sources = new Map<string, string>();
  const ec2s = new Map<string, EC2Client>();
  const ec2 = (region: string) => {
    let client = ec2s.get(region);
    if (!client) {
      client = new EC2Client({
        endpoint: motoEndpoint,
        region,
        credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      });
      ec2s.set(region, client);
    }
    return client;
  };
  /** The snapshot whose blocks hold `snapshotId`'s content: the one its volume was created from. */
  const contentOf = async (snapshotId: string, region: string): Promise<string> => {
    const known = sources.get(snapshotId);
    if (known) return known;
    let source = snapshotId;
    try {
      const snap = (await ec2(region).send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] })))
        .Snapshots?.[0];
      if (snap?.VolumeId) {
        const volume = (await ec2(region).send(new DescribeVolumesCommand({ VolumeIds: [snap.VolumeId] })))
          .Volumes?.[0];
        if (volume?.SnapshotId && volume.SnapshotId !== snapshotId) source = volume.SnapshotId;
      }
    } catch {
      // An unknown snapshot or volume: moto answers the request as it is.
    }
    sources.set(snapshotId, source);
    return source;
  };

  const forward = (req: IncomingMessage, res: ServerResponse, path: string) => {
    const upstream = request(
      {
        host: moto.hostname,
        port: moto.port,
        method: req.method,
        path,
        headers: { ...req.headers, host: moto.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (error) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`emulated EBS: moto did not answer: ${error.message}`);
    });
    req.pipe(upstream);
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const match = blocksPath.exec(url.pathname);
    const region = ebsScope(req);
    if (req.method !== 'GET' || !match || !region) {
      forward(req, res, req.url ?? '/');
      return;
    }
    void contentOf(match[1] as string, region).then((source) => {
      url.pathname = `/snapshots/${source}/blocks${match[2] ?? ''}`;
      forward(req, res, `${url.pathname}${url.search}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const client of ec2s.values()) client.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * `npm run bench [-- --quick] [--latency MS] [--burst N] [--burst-full] [--cold-runs N]`: speed, cost and scale of
 * Cordon on the emulated account. Prints a table and writes bench/results.json. Reports; never fails
 * on a time.
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startMoto } from '../scripts/local/moto.js';
import { repoRoot } from '../scripts/local/runner.js';
import { deployLocalStack } from '../scripts/local/stack.js';
import { burst } from './burst.js';
import { measureColdStarts } from './cold-start.js';
import { type ContainmentRun, minimumRounds, summariseRuns, timeToContainment } from './containment.js';
import { caseCost, prices } from './cost.js';
import { evidenceIo } from './evidence-io.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    latency: { type: 'string', default: '50' },
    burst: { type: 'string', default: '100' },
    // Fresh processes per function and variant in the cold-start section.
    'cold-runs': { type: 'string', default: '6' },
    // Run every burst case to its end (evidence included) instead of stopping it once contained.
    'burst-full': { type: 'boolean', default: false },
  },
});
const quick = values.quick === true;
const latencyMs = Number(values.latency);
const repeats = quick ? 1 : 3;
const out = (line = '') => process.stdout.write(`${line}\n`);
const log = (line: string) => process.stderr.write(`${line}\n`);

const moto = await startMoto();
const sectionStarted = performance.now();
const elapsed = () => `${Math.round((performance.now() - sectionStarted) / 1000)} s`;
const results: Record<string, unknown> = {
  measuredAt: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  },
  latencyMs,
};
try {
  // 1. Time to containment.
  log('time to containment…');
  type Shape = { enis: number; volumes: number };
  const shapes: Shape[] = [
    { enis: 1, volumes: 1 },
    { enis: 3, volumes: 1 },
    { enis: 1, volumes: 8 },
    { enis: 3, volumes: 8 },
  ];
  const containment: (ReturnType<typeof summariseRuns> & { plan: string; enis: number; volumes: number })[] =
    [];
  const samples: ContainmentRun[] = [];
  const stack = await deployLocalStack(moto.endpoint);
  for (const plan of ['contain-first', 'capture-first'] as const) {
    // The capture-first comparison on the smallest instance keeps the run within its time budget.
    for (const shape of plan === 'contain-first' ? shapes : [shapes[0] as Shape]) {
      const runs: ContainmentRun[] = [];
      // The first contain-first run of each 1-ENI shape runs to the end: the cost section reads it.
      const full = (i: number) => plan === 'contain-first' && shape.enis === 1 && i === 0;
      for (let i = 0; i < repeats; i += 1)
        runs.push(await timeToContainment(stack, { ...shape, plan }, latencyMs, full(i)));
      samples.push(...runs);
      containment.push({ plan, ...shape, ...summariseRuns(runs) });
    }
  }
  const conntrackWaitSeconds = 60;
  results.containment = containment.map((r) => ({
    ...r,
    // The production wait between the conversion and the isolation group, which the bench sets to 0:
    // the time to the isolation group with it is the measured time plus the wait.
    withConntrackWaitMs: r.medianMs + conntrackWaitSeconds * 1000,
    minimumRounds: r.plan === 'contain-first' ? minimumRounds.rounds : null,
    minimumRoundsCountedAs: r.plan === 'contain-first' ? minimumRounds.countedAs : null,
  }));
  out(`\n1. Time to containment (execution start to last ENI isolated and credentials revoked),`);
  out(
    `   ${latencyMs} ms added to every AWS call, median of ${repeats} run(s); conntrack wait set to 0 here (${conntrackWaitSeconds} s in production: add it)`,
  );
  out(
    '   plan           ENIs  volumes  median ms  with wait ms  AWS calls  sequential rounds  minimum  Lambda before 1st ENI  outcome',
  );
  for (const r of containment) {
    out(
      `   ${r.plan.padEnd(14)} ${String(r.enis).padStart(4)}  ${String(r.volumes).padStart(7)}  ${String(r.medianMs).padStart(9)}  ${String(r.medianMs + conntrackWaitSeconds * 1000).padStart(12)}  ${String(r.calls).padStart(9)}  ${String(r.sequential).padStart(17)}  ${String(r.plan === 'contain-first' ? minimumRounds.rounds : '-').padStart(7)}  ${String(r.lambdaInvocations).padStart(21)}  ${r.outcomes}`,
    );
  }
  out(`   minimum rounds: ${minimumRounds.countedAs}`);

  // 2. Cost per case.
  log(`[${elapsed()}] cost per case…`);
  const costs = [1, 8].map((volumes) => {
    const run = samples.find(
      (s) => s.plan === 'contain-first' && s.volumes === volumes && s.enis === 1 && s.outcome !== 'contained',
    ) as ContainmentRun;
    return caseCost({
      volumes,
      transitions: run.transitions,
      stepMs: run.stepMs,
      calls: run.calls,
      snapshotSeconds: 600,
      memorySeconds: 900,
    });
  });
  results.cost = { prices, snapshotMinutes: 10, memoryMinutes: 15, cases: costs };
  out(
    `\n2. Cost per case (snapshots 10 min, memory capture 15 min; ${prices.region} list prices as of ${prices.date}, USD)`,
  );
  out(
    '   volumes  transitions  Lambda invocations  GB-s     Step Functions  Lambda     DynamoDB   S3         KMS        SNS        total',
  );
  for (const c of costs) {
    const u = c.usd;
    out(
      `   ${String(c.volumes).padStart(7)}  ${String(c.transitions).padStart(11)}  ${String(c.invocations).padStart(18)}  ${c.gbSeconds.toFixed(2).padStart(6)}   ` +
        [u.stepFunctions, u.lambda, u.dynamodb, u.s3, u.kms, u.sns, u.total]
          .map((v) => `$${v.toFixed(6)}`.padEnd(10))
          .join(' '),
    );
  }

  // 3. Cold start.
  log(`[${elapsed()}] cold start (fresh processes)…`);
  // One fresh process per core at a time: nothing else runs during this section.
  const parallel = availableParallelism();
  const coldRuns = quick ? 5 : Number(values['cold-runs']);
  const cold = await measureColdStarts(coldRuns, parallel);
  results.coldStart = { parallel, functions: cold };
  out(
    `\n3. Cold start: bundle bytes (as serverless.yml bundles them) and module initialisation, median of ${coldRuns} fresh Node ${process.version} processes, ${parallel} at a time`,
  );
  out('   function             bundled bytes  init ms   SDK external bytes  init ms');
  for (const r of cold) {
    out(
      `   ${r.fn.padEnd(20)} ${String(r.bundledBytes).padStart(13)}  ${r.bundledInitMs.toFixed(1).padStart(7)}   ${String(r.externalBytes).padStart(18)}  ${r.externalInitMs.toFixed(1).padStart(7)}`,
    );
  }

  // 4. Burst.
  const burstCases = quick ? 10 : Number(values.burst);
  log(`[${elapsed()}] ` + `burst of ${burstCases} cases…`);
  const b = await burst(moto.endpoint, burstCases, 0, 0.2, values['burst-full'] === true);
  results.burst = b;
  out(
    `\n4. Burst: ${b.cases} cases at once, ${Math.round(b.throttleRate * 100)}% of AWS calls throttled, ${b.latencyMs} ms per call` +
      (b.full
        ? ', every case run to its end'
        : ', each case stopped once contained (--burst-full runs them to the end)'),
  );
  out(`   contained ${b.contained}/${b.cases}; outcomes ${JSON.stringify(b.outcomes)}`);
  out(`   time to containment p50 ${b.p50Ms} ms, p95 ${b.p95Ms} ms; all cases done in ${b.wallMs} ms`);
  out(
    `   per case (median)${b.full ? '' : ' up to containment'}: ${b.callsPerCase} AWS call attempts, ${b.retriesPerCase} throttled and retried`,
  );
  for (const problem of b.problems) out(`   not completed: ${problem}`);

  // 5. Evidence I/O.
  log(`[${elapsed()}] evidence I/O…`);
  const io = await evidenceIo(moto.endpoint, quick ? 128 * 2 ** 20 : 2 ** 30, repeats);
  results.evidenceIo = io;
  out(
    `\n5. Evidence I/O: a ${io.bytes / 2 ** 20} MiB memory image (its case took ${io.caseMs} ms to run), median of ${io.runs} run(s),`,
  );
  out(
    `   downloaded from ${io.server} in the ${io.partSizeMiB} MiB parts it picks (s3rver reads only the requested range from disk, as S3 serves a range; moto reads the whole object)`,
  );
  out(
    `   the CLI as installed from its package: cordon evidence get ${io.getMs} ms, cordon evidence verify --dir ${io.verifyMs} ms, both ${io.getVerifyMs} ms`,
  );
  if (io.serverCpuMs !== undefined)
    out(
      `   (s3rver used ${io.serverCpuMs} ms of CPU on these same cores while get ran: on AWS, S3 does that work)`,
    );
  out(
    `   sha256sum of the same bytes: ${io.sha256sumMs} ms; ratio ${io.ratio.toFixed(2)}` +
      (io.opensslMs === undefined ? '' : ` (openssl dgst -sha256: ${io.opensslMs} ms)`),
  );
  out(
    `   from a clone (tsx compiles the sources at each start): get ${io.fromClone.getMs} ms, verify --dir ${io.fromClone.verifyMs} ms, ratio ${io.fromClone.ratio.toFixed(2)}`,
  );
} finally {
  await moto.stop();
}
const file = resolve(repoRoot, 'bench', 'results.json');
writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
out(`\nwritten to ${file}`);

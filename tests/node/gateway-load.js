#!/usr/bin/env node
/*
 * A load through Hyperledger Fabric's official Node client, the way Fabric's
 * own performance figures are taken: COUNT `put` transactions on the example
 * contract (submitTransaction: endorse, submit, wait for the commit status),
 * INFLIGHT of them at a time from one client process. Run by
 * `qcss bench fabric-client` (cli/src/bench_fabric_client.rs), which adds
 * the server processes' CPU; usable by hand with gateway-check.js's
 * connection parameters plus:
 *
 *   COUNT (default 12000), INFLIGHT (default 200), RUN_ID (makes keys
 *   unique; default time and pid), TIMEOUT_MS (per call, default 30000).
 *
 * Prints one JSON line: count, ok, failed, seconds, txPerSec, latency
 * percentiles (ms), the client's own CPU seconds, the key type, and the
 * first error if any. Exits 0 if every transaction committed, 1 otherwise.
 */
'use strict';

const { param, connectionParams, openGateway } = require('./connection');

const params = {
    ...connectionParams(),
    count: Number(param('COUNT', '12000')),
    inflight: Number(param('INFLIGHT', '200')),
    runId: param('RUN_ID', `${Date.now()}-${process.pid}`),
};

function percentile(sorted, p) {
    if (sorted.length === 0) {
        return 0;
    }
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function main() {
    const { client, gateway, privateKey } = openGateway(params);
    const contract = gateway.getNetwork(params.channel).getContract(params.chaincode);
    const latencies = [];
    let next = 0;
    let ok = 0;
    let failed = 0;
    let firstError;
    const worker = async () => {
        for (;;) {
            const i = next++;
            if (i >= params.count) {
                return;
            }
            const t0 = process.hrtime.bigint();
            try {
                await contract.submitTransaction('put', `load-${params.runId}-${i}`, `value ${i}`);
                ok++;
            } catch (err) {
                failed++;
                firstError ??= String(err?.message ?? err).slice(0, 500);
            }
            latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
    };
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    try {
        await Promise.all(Array.from({ length: Math.max(1, params.inflight) }, worker));
    } finally {
        gateway.close();
        client.close();
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    latencies.sort((a, b) => a - b);
    const out = {
        count: params.count,
        inflight: params.inflight,
        ok,
        failed,
        seconds,
        txPerSec: ok / seconds,
        latencyMs: {
            p50: percentile(latencies, 50),
            p99: percentile(latencies, 99),
            max: latencies.at(-1) ?? 0,
        },
        clientCpuSecs: (cpu.user + cpu.system) / 1e6,
        keyType: privateKey.asymmetricKeyType,
        firstError,
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return failed === 0;
}

main().then(
    (allOk) => process.exit(allOk ? 0 : 1),
    (err) => {
        console.error(`gateway-load failed: ${err?.stack ?? err}`);
        process.exit(2);
    },
);

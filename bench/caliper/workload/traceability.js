'use strict';
// Caliper workload: the same traceability mix as `qcss bench network`:
// add_event 70%, register_batch 10%, scan 20% (by a consumer identity).
// Each worker registers its own batches (a pool: a batch with a transaction
// in flight is not used again until it completes, so add_events do not
// conflict under MVCC) and a batch with an Ed25519 unit-code key whose codes
// it signs itself. The org's permit and product must exist: run
// `qcss bench network` once against the network first (it sets them up).
//
// Arguments: org (directory name used as identity prefix, default
// "producer"), orgIndex (0: the product qcss bench registered for that
// org), batches (pool size per worker, default 64).

const crypto = require('crypto');
const { WorkloadModuleBase } = require('@hyperledger/caliper-core');

const BASE = 'https://q.example.com';

function gtin(body) {
    let sum = 0;
    [...body].reverse().forEach((c, i) => { sum += Number(c) * (i % 2 === 0 ? 3 : 1); });
    return body + String((10 - (sum % 10)) % 10);
}

class Traceability extends WorkloadModuleBase {
    async initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext) {
        await super.initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext);
        const org = roundArguments.org || 'producer';
        this.client = `${org}-bench-client`;
        this.consumer = `${org}-bench-consumer`;
        this.gtin = gtin(`06950000${String(roundArguments.orgIndex || 0).padStart(5, '0')}`);
        this.tag = `K${Date.now().toString(36).slice(-5).toUpperCase()}${workerIndex}`;
        this.counter = 0;
        this.serial = 0;
        const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
        this.key = privateKey;
        this.scanLot = `${this.tag}S`;
        await this.invoke(this.client, 'register_batch', {
            gtin: this.gtin, lot: this.scanLot, quantity: 100000000, uom: 'H87',
            production_date: '2026-06-01', site: 'caliper line', code_key: publicKey.export({ format: 'jwk' }).x,
        });
        this.free = [];
        const n = roundArguments.batches || 64;
        for (let i = 0; i < n; i++) {
            const lot = `${this.tag}E${i}`;
            await this.invoke(this.client, 'register_batch', {
                gtin: this.gtin, lot, quantity: 1000000, uom: 'KGM', production_date: '2026-06-01', site: 'caliper line',
            });
            this.free.push(`${this.gtin}/${lot}`);
        }
    }

    invoke(identity, fn, arg) {
        return this.sutAdapter.sendRequests({
            contractId: 'traceability',
            contractFunction: fn,
            contractArguments: [JSON.stringify(arg)],
            invokerIdentity: identity,
            readOnly: false,
        });
    }

    code() {
        this.serial += 1;
        const path = `/01/${this.gtin}/10/${this.scanLot}/21/${this.serial}`;
        const sig = crypto.sign(null, Buffer.from(`qcss-unit-code-v1:${path}`), this.key).toString('base64url');
        return `${BASE}${path}?8030=${sig}`;
    }

    async submitTransaction() {
        const r = Math.random() * 100;
        if (r < 70 && this.free.length > 0) {
            const batch = this.free.pop();
            try {
                return await this.invoke(this.client, 'add_event', {
                    target: batch, biz_step: 'storing', read_point: 'caliper warehouse',
                    data: { temperature_c: 4, humidity: 61 },
                });
            } finally {
                this.free.push(batch);
            }
        }
        if (r < 80 || (r < 70 && this.free.length === 0)) {
            this.counter += 1;
            return this.invoke(this.client, 'register_batch', {
                gtin: this.gtin, lot: `${this.tag}N${this.counter}`, quantity: 500, uom: 'KGM',
                production_date: '2026-06-02', site: 'caliper line',
            });
        }
        return this.invoke(this.consumer, 'scan', { code: this.code(), location: 'Hangzhou' });
    }
}

function createWorkloadModule() {
    return new Traceability();
}

module.exports.createWorkloadModule = createWorkloadModule;

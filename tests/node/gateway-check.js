#!/usr/bin/env node
/*
 * Drives a QCSS peer with Hyperledger Fabric's official Node client,
 * @hyperledger/fabric-gateway, exactly as a Fabric application would:
 * mTLS with a CA-issued identity, evaluate, submit, submitAsync + commit
 * status, chaincode events (from a block, from the next commit, resumed from
 * a checkpoint), block and filtered block events, and a failing
 * transaction. Run by tests/tests/fabric_node_client.rs; usable by hand:
 *
 *   PEER_ENDPOINT=127.0.0.1:7051 TLS_ROOT_CERT=org1/ca/tls-ca-cert.pem \
 *   CERT=org1/client1/cert.pem KEY=org1/client1/key.pem \
 *   TLS_CERT=org1/client1/tls-cert.pem TLS_KEY=org1/client1/tls-key.pem \
 *   MSP_ID=Org1MSP CHANNEL=qcss-test CHAINCODE=example node gateway-check.js
 *
 * Optional: RUN_ID (makes keys, event names and messages unique; default
 * time and pid), TIMEOUT_MS (per step, default 30000), HOST_ALIAS (TLS
 * server name to expect when it differs from the endpoint's host).
 *
 * Parameters are environment variables (or `--name=value` arguments, e.g.
 * `--peer-endpoint=...`). Prints one JSON line of what it saw on stdout and
 * exits 0; on any failure prints the error on stderr and exits non-zero.
 * It uses the example contract (chaincode/contracts/example): put, get,
 * emit, fail.
 */
'use strict';

const grpc = require('@grpc/grpc-js');
const { checkpointers, EndorseError, GatewayError, StatusCode } = require('@hyperledger/fabric-gateway');
const { common, peer } = require('@hyperledger/fabric-protos');
const { param, connectionParams, openGateway } = require('./connection');

const utf8 = new TextDecoder();

const params = {
    ...connectionParams(),
    // Makes keys, event names and messages unique (and known to the caller).
    runId: param('RUN_ID', `${Date.now()}-${process.pid}`),
};

const statusNames = Object.fromEntries(Object.entries(StatusCode).map(([name, code]) => [code, name]));

function check(condition, message) {
    if (!condition) {
        throw new Error(`check failed: ${message}`);
    }
}

/** Rejects after the step timeout unless `promise` settles first. */
async function within(what, promise) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${params.timeoutMs} ms`)), params.timeoutMs);
    });
    try {
        return await Promise.race([promise, timeout]);
    } finally {
        clearTimeout(timer);
    }
}

/** Reads items from a closeable event iterable until `done(item)` says so; closes it. */
async function collect(what, events, done) {
    const items = [];
    const iterator = events[Symbol.asyncIterator]();
    try {
        for (;;) {
            const next = await within(what, iterator.next());
            check(!next.done, `${what}: the stream ended early after ${items.length} items`);
            items.push(next.value);
            if (done(next.value, items)) {
                return items;
            }
        }
    } finally {
        events.close();
    }
}

function errorInfo(err) {
    return {
        name: err?.constructor?.name ?? typeof err,
        isEndorseError: err instanceof EndorseError,
        isGatewayError: err instanceof GatewayError,
        code: err?.code,
        grpcCodeName: Object.keys(grpc.status).find((k) => grpc.status[k] === err?.code),
        message: String(err?.message ?? err),
        details: (err?.details ?? []).map((d) => ({ address: d.address, mspId: d.mspId, message: d.message })),
        transactionId: err?.transactionId,
    };
}

/** The transaction ids of a full block's envelopes, and their validation codes. */
function blockTransactions(block) {
    const envelopes = block.getData()?.getDataList_asU8() ?? [];
    // metadata[TRANSACTIONS_FILTER]: one validation code per envelope.
    const filter = block.getMetadata()?.getMetadataList_asU8()[common.BlockMetadataIndex.TRANSACTIONS_FILTER] ?? new Uint8Array();
    return envelopes.map((bytes, i) => {
        const envelope = common.Envelope.deserializeBinary(bytes);
        const payload = common.Payload.deserializeBinary(envelope.getPayload_asU8());
        const channelHeader = common.ChannelHeader.deserializeBinary(payload.getHeader().getChannelHeader_asU8());
        return {
            txId: channelHeader.getTxId(),
            type: channelHeader.getType(),
            channel: channelHeader.getChannelId(),
            code: statusNames[filter[i]] ?? String(filter[i]),
        };
    });
}

async function main() {
    const { client, gateway, privateKey } = openGateway(params);
    const deadline = () => ({ deadline: Date.now() + params.timeoutMs });
    const out = { keyType: privateKey.asymmetricKeyType, curve: privateKey.asymmetricKeyDetails?.namedCurve };
    try {
        const network = gateway.getNetwork(params.channel);
        const contract = network.getContract(params.chaincode);
        const run = params.runId;

        // submitTransaction: endorse, submit, wait for a successful commit.
        const key = `node-${run}`;
        const value = `value from the Fabric Node client ${run}`;
        const putResult = await contract.submitTransaction('put', key, value);
        out.put = { key, value, result: utf8.decode(putResult) };

        // evaluateTransaction: the committed value, read back.
        out.get = utf8.decode(await contract.evaluateTransaction('get', key));
        check(out.get === value, `get returned ${JSON.stringify(out.get)}, expected ${JSON.stringify(value)}`);

        // submitAsync + getStatus: the commit status, block and code.
        const putAgain = await contract.submitAsync('put', { arguments: [`${key}-async`, 'async'] });
        const putStatus = await putAgain.getStatus();
        out.putAsync = {
            transactionId: putAgain.getTransactionId(),
            statusTransactionId: putStatus.transactionId,
            blockNumber: Number(putStatus.blockNumber),
            code: putStatus.code,
            codeName: statusNames[putStatus.code],
            successful: putStatus.successful,
        };
        check(putStatus.successful, `put-async committed with ${statusNames[putStatus.code]}`);

        // A chaincode event, committed in a later block.
        const eventName = `node-event-${run}`;
        const eventPayload = `payload ${run}`;
        const emitTx = await contract.submitAsync('emit', { arguments: [eventName, eventPayload] });
        const emitStatus = await emitTx.getStatus();
        out.emit = {
            eventName,
            eventPayload,
            transactionId: emitTx.getTransactionId(),
            blockNumber: Number(emitStatus.blockNumber),
            code: emitStatus.code,
            codeName: statusNames[emitStatus.code],
            successful: emitStatus.successful,
        };
        check(emitStatus.successful, `emit committed with ${statusNames[emitStatus.code]}`);
        const firstBlock = putStatus.blockNumber;
        const lastBlock = emitStatus.blockNumber;

        // getChaincodeEvents from the put-async block: the first event of this
        // chaincode from there on is ours (nothing else emits in this test).
        const chaincodeEvents = await network.getChaincodeEvents(params.chaincode, { startBlock: firstBlock }, deadline());
        const [event] = await collect('chaincode events', chaincodeEvents, () => true);
        out.chaincodeEvent = {
            chaincodeName: event.chaincodeName,
            eventName: event.eventName,
            payload: utf8.decode(event.payload),
            transactionId: event.transactionId,
            blockNumber: Number(event.blockNumber),
        };

        // getBlockEvents: full blocks from the put-async block to the emit block.
        const blockEvents = await network.getBlockEvents({ startBlock: firstBlock });
        const blocks = await collect(
            'block events',
            blockEvents,
            (block) => BigInt(block.getHeader().getNumber()) >= lastBlock,
        );
        out.blocks = blocks.map((block) => ({
            number: Number(block.getHeader().getNumber()),
            transactions: blockTransactions(block),
        }));

        // getFilteredBlockEvents: the same blocks, filtered.
        const filteredEvents = await network.getFilteredBlockEvents({ startBlock: firstBlock });
        const filtered = await collect(
            'filtered block events',
            filteredEvents,
            (block) => BigInt(block.getNumber()) >= lastBlock,
        );
        out.filteredBlocks = filtered.map((block) => ({
            number: Number(block.getNumber()),
            channel: block.getChannelId(),
            transactions: block.getFilteredTransactionsList().map((tx) => ({
                txId: tx.getTxid(),
                code: statusNames[tx.getTxValidationCode()],
                events: (tx.getTransactionActions()?.getChaincodeActionsList() ?? [])
                    .map((a) => a.getChaincodeEvent())
                    .filter((e) => e !== undefined)
                    .map((e) => ({ chaincodeId: e.getChaincodeId(), eventName: e.getEventName() })),
            })),
        }));

        // Listening from the next commit (no start block: SeekNextCommit),
        // then committing: the listeners see the new transaction.
        const liveChaincodeEvents = await network.getChaincodeEvents(params.chaincode, deadline());
        const liveBlockEvents = await network.getBlockEvents();
        const liveFilteredEvents = await network.getFilteredBlockEvents();
        // The streams are opened asynchronously: let the peer see them first.
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const liveName = `node-live-${run}`;
        const liveTx = await contract.submitAsync('emit', { arguments: [liveName, `live ${run}`] });
        const liveStatus = await liveTx.getStatus();
        check(liveStatus.successful, `live emit committed with ${statusNames[liveStatus.code]}`);
        const [liveEvent] = await collect('live chaincode events', liveChaincodeEvents, () => true);
        const liveBlocks = await collect(
            'live block events',
            liveBlockEvents,
            (block) => BigInt(block.getHeader().getNumber()) >= liveStatus.blockNumber,
        );
        const liveFiltered = await collect(
            'live filtered block events',
            liveFilteredEvents,
            (block) => BigInt(block.getNumber()) >= liveStatus.blockNumber,
        );
        out.live = {
            transactionId: liveTx.getTransactionId(),
            blockNumber: Number(liveStatus.blockNumber),
            codeName: statusNames[liveStatus.code],
            event: {
                eventName: liveEvent.eventName,
                payload: utf8.decode(liveEvent.payload),
                transactionId: liveEvent.transactionId,
                blockNumber: Number(liveEvent.blockNumber),
            },
            blocks: liveBlocks.map((block) => ({
                number: Number(block.getHeader().getNumber()),
                transactions: blockTransactions(block),
            })),
            filteredBlocks: liveFiltered.map((block) => ({
                number: Number(block.getNumber()),
                transactions: block.getFilteredTransactionsList().map((tx) => ({
                    txId: tx.getTxid(),
                    code: statusNames[tx.getTxValidationCode()],
                })),
            })),
        };

        // Resuming from a checkpoint (block + transaction id) after the
        // first event: the next event is the live one.
        const checkpointer = checkpointers.inMemory();
        await checkpointer.checkpointChaincodeEvent(event);
        const resumedEvents = await network.getChaincodeEvents(params.chaincode, { checkpoint: checkpointer }, deadline());
        const [resumed] = await collect('resumed chaincode events', resumedEvents, () => true);
        out.resumedEvent = {
            eventName: resumed.eventName,
            transactionId: resumed.transactionId,
            blockNumber: Number(resumed.blockNumber),
        };

        // A failing transaction function: submit sees an EndorseError, evaluate a GatewayError.
        const failMessage = `deliberate failure ${run}`;
        try {
            await contract.submitTransaction('fail', failMessage);
            out.submitFail = { thrown: false };
        } catch (err) {
            out.submitFail = { thrown: true, ...errorInfo(err) };
        }
        try {
            await contract.evaluateTransaction('fail', failMessage);
            out.evaluateFail = { thrown: false };
        } catch (err) {
            out.evaluateFail = { thrown: true, ...errorInfo(err) };
        }
        out.failMessage = failMessage;
        check(out.submitFail.isEndorseError, `submitting fail: expected an EndorseError, got ${JSON.stringify(out.submitFail)}`);
        check(out.evaluateFail.isGatewayError, `evaluating fail: expected a GatewayError, got ${JSON.stringify(out.evaluateFail)}`);
    } finally {
        gateway.close();
        client.close();
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().then(
    () => process.exit(0),
    (err) => {
        console.error(`gateway-check failed: ${err?.stack ?? err}`);
        if (err instanceof GatewayError) {
            console.error(`gRPC code ${err.code}; details ${JSON.stringify(err.details)}`);
        }
        process.exit(1);
    },
);

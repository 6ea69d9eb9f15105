/*
 * What gateway-check.js and gateway-load.js share: parameters from the
 * environment (or `--name=value` arguments), and a Gateway connection made
 * exactly as a Fabric application makes one — mTLS with a CA-issued
 * identity, the client's TLS certificate hash bound into requests, and a
 * signer for the identity's key: ECDSA P-256 over the SHA-256 of each
 * message, or Ed25519 over the whole message (hash.none).
 */
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const grpc = require('@grpc/grpc-js');
const { connect, hash, signers } = require('@hyperledger/fabric-gateway');

function param(name, fallback) {
    const flag = `--${name.toLowerCase().replace(/_/g, '-')}=`;
    const arg = process.argv.slice(2).find((a) => a.startsWith(flag));
    const value = arg !== undefined ? arg.slice(flag.length) : process.env[name];
    if (value !== undefined && value !== '') {
        return value;
    }
    if (fallback !== undefined) {
        return fallback;
    }
    throw new Error(`missing parameter ${name} (environment variable, or ${flag}VALUE)`);
}

/** The connection parameters every script takes. */
function connectionParams() {
    return {
        peerEndpoint: param('PEER_ENDPOINT'),
        tlsRootCert: param('TLS_ROOT_CERT'),
        cert: param('CERT'),
        key: param('KEY'),
        tlsCert: param('TLS_CERT'),
        tlsKey: param('TLS_KEY'),
        mspId: param('MSP_ID'),
        channel: param('CHANNEL'),
        chaincode: param('CHAINCODE'),
        // Empty: connect to the endpoint's own host name.
        hostAlias: param('HOST_ALIAS', ''),
        // Per call, and for waiting on events.
        timeoutMs: Number(param('TIMEOUT_MS', '30000')),
    };
}

/** A connected gateway, its gRPC client and the identity's private key. */
function openGateway(params) {
    const tlsRoot = fs.readFileSync(params.tlsRootCert);
    const tlsCertPem = fs.readFileSync(params.tlsCert);
    const tlsKeyPem = fs.readFileSync(params.tlsKey);
    const credentials = fs.readFileSync(params.cert);
    const privateKey = crypto.createPrivateKey(fs.readFileSync(params.key));

    // mTLS: the peer requires a client certificate from a channel org's TLS CA.
    const grpcOptions = params.hostAlias ? { 'grpc.ssl_target_name_override': params.hostAlias } : {};
    const client = new grpc.Client(
        params.peerEndpoint,
        grpc.credentials.createSsl(tlsRoot, tlsKeyPem, tlsCertPem),
        grpcOptions,
    );
    const tlsClientCertificateHash = crypto
        .createHash('sha256')
        .update(new crypto.X509Certificate(tlsCertPem).raw)
        .digest();

    const deadline = () => ({ deadline: Date.now() + params.timeoutMs });
    const gateway = connect({
        client,
        identity: { mspId: params.mspId, credentials },
        signer: signers.newPrivateKeySigner(privateKey),
        // Ed25519 signs the whole message; ECDSA signs its SHA-256.
        hash: privateKey.asymmetricKeyType === 'ed25519' ? hash.none : hash.sha256,
        tlsClientCertificateHash,
        evaluateOptions: deadline,
        endorseOptions: deadline,
        submitOptions: deadline,
        commitStatusOptions: deadline,
    });
    return { client, gateway, privateKey };
}

module.exports = { param, connectionParams, openGateway };

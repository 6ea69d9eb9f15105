#!/usr/bin/env node
// Caliper 0.6's Peer Gateway connector refuses `mutualTls` ("Mutual tls is
// not supported with the Peer Gateway Connector") and opens its gRPC
// channels with the TLS root only (PeerGateway.js,
// `grpc.credentials.createSsl(rootCert)`). QCSS peers, like Fabric peers
// with clientAuthRequired, demand a client certificate, so the handshake
// fails. This patch makes the connector present the TLS pair named by
// QCSS_CALIPER_TLS_CERT / QCSS_CALIPER_TLS_KEY when they are set. Idempotent.
'use strict';
const fs = require('fs');
const path = require('path');
const file = path.join(__dirname, 'node_modules', '@hyperledger', 'caliper-fabric', 'lib',
    'connector-versions', 'peer-gateway', 'PeerGateway.js');
let s = fs.readFileSync(file, 'utf8');
const from = 'const tlsCredentials = grpc.credentials.createSsl(Buffer.from(tlsRootCert));';
const to = 'const tlsCredentials = process.env.QCSS_CALIPER_TLS_CERT ? grpc.credentials.createSsl(Buffer.from(tlsRootCert), require(\'fs\').readFileSync(process.env.QCSS_CALIPER_TLS_KEY), require(\'fs\').readFileSync(process.env.QCSS_CALIPER_TLS_CERT)) : grpc.credentials.createSsl(Buffer.from(tlsRootCert)); // patched for QCSS (mutual TLS)';
if (s.includes('patched for QCSS')) {
    console.log('already patched');
} else if (!s.includes(from)) {
    throw new Error(`${file}: the line to patch is not there (another Caliper version?)`);
} else {
    fs.writeFileSync(file, s.replace(from, to));
    console.log(`patched ${file}`);
}

#!/usr/bin/env node
// Writes networkconfig.yaml and one connection profile per org for Caliper's
// Fabric connector, from a network `qcss network up` made, after
// `qcss bench network --dir DIR --write-connection ...` (or any earlier
// `qcss bench network` run) has enrolled the benchmark identities
// (bench-client: enterprise, bench-consumer: consumer) and set up permits
// and products.
//
//   node make-networkconfig.js [DIR]      (default: ../../qcss-net)
'use strict';
const fs = require('fs');
const path = require('path');

const dir = path.resolve(process.argv[2] || path.join(__dirname, '..', '..', 'qcss-net'));
const info = JSON.parse(fs.readFileSync(path.join(dir, 'network.json'), 'utf8'));
const out = path.join(__dirname, 'generated');
fs.mkdirSync(out, { recursive: true });

const organizations = [];
info.orgs.forEach((o) => {
    const odir = path.join(dir, 'orgs', o.name);
    const id = (name) => ({
        name,
        clientPrivateKey: { path: path.join(odir, name, 'key.pem') },
        clientSignedCert: { path: path.join(odir, name, 'cert.pem') },
    });
    for (const who of ['bench-client', 'bench-consumer']) {
        if (!fs.existsSync(path.join(odir, who, 'cert.pem'))) {
            throw new Error(`${odir}/${who} is missing: run qcss bench network --dir ${dir} --write-connection /tmp/conn.json first`);
        }
    }
    const peerName = `peer0.${o.name}`;
    const profile = {
        name: `${o.name}`,
        version: '1.0.0',
        client: { organization: o.name },
        organizations: { [o.name]: { mspid: o.msp_id, peers: [peerName] } },
        peers: {
            [peerName]: {
                url: `grpcs://${o.peer}`,
                tlsCACerts: { path: path.join(odir, 'ca', 'tls-ca-cert.pem') },
                grpcOptions: { 'ssl-target-name-override': o.peer.split(':')[0] },
            },
        },
    };
    const profilePath = path.join(out, `connection-${o.name}.json`);
    fs.writeFileSync(profilePath, JSON.stringify(profile, null, 2));
    organizations.push({
        mspid: o.msp_id,
        // Identity names are global in Caliper: prefix them with the org.
        identities: {
            certificates: ['bench-client', 'bench-consumer'].map((n) => ({ ...id(n), name: `${o.name}-${n}` })),
        },
        connectionProfile: { path: profilePath, discover: false },
    });
});

const networkconfig = {
    name: `QCSS network in ${dir}`,
    version: '2.0.0',
    caliper: { blockchain: 'fabric' },
    channels: [{ channelName: info.channel, contracts: [{ id: 'traceability' }] }],
    organizations,
};
// JSON is YAML: Caliper reads either.
fs.writeFileSync(path.join(out, 'networkconfig.yaml'), JSON.stringify(networkconfig, null, 2));
// The TLS client pair the patched connector presents (QCSS peers require mutual TLS).
const first = path.join(dir, 'orgs', info.orgs[0].name, 'bench-client');
fs.writeFileSync(path.join(out, 'tls-env.sh'),
    `export QCSS_CALIPER_TLS_CERT=${path.join(first, 'tls-cert.pem')}\nexport QCSS_CALIPER_TLS_KEY=${path.join(first, 'tls-key.pem')}\n`);
console.log(`wrote ${out}/networkconfig.yaml, connection profiles and tls-env.sh for ${info.orgs.length} orgs`);

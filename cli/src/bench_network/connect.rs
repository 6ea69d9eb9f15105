//! Where `qcss bench network` sends its load: a `network up` directory or a
//! connection file, the identities it signs with, Gateway connections.

use super::*;

pub(super) fn rel(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

pub(super) fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
}

pub(super) fn load_identity(msp: &str, cert: &Path, key: &Path) -> Result<Arc<SigningIdentity>> {
    let key_pem = String::from_utf8(read(key)?)?;
    let key = SigningKey::from_pem(&key_pem).map_err(|e| anyhow!("{}: {e}", key.display()))?;
    let id = SigningIdentity::new(MspId(msp.into()), read(cert)?, key)
        .map_err(|e| anyhow!("{}: {e}", cert.display()))?;
    Ok(Arc::new(id))
}

pub(super) fn load_connection(path: &Path) -> Result<Target> {
    let c: Connection = serde_json::from_slice(&read(path)?)
        .with_context(|| format!("{} is not a connection file", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut gateways = Vec::new();
    for g in &c.gateways {
        let tls = match (&g.tls_cert, &g.tls_key) {
            (Some(c), Some(k)) => Some((read(&rel(base, c))?, read(&rel(base, k))?)),
            (None, None) => None,
            _ => bail!("{}: tls_cert and tls_key go together", g.endpoint),
        };
        let consumer = match &g.consumer {
            Some(i) => Some(load_identity(
                &i.msp_id,
                &rel(base, &i.cert),
                &rel(base, &i.key),
            )?),
            None => None,
        };
        gateways.push(Gw {
            endpoint: g.endpoint.clone(),
            server_name: g
                .server_name
                .clone()
                .unwrap_or_else(|| qcss_network::tls::server_name(&g.endpoint).to_owned()),
            roots: vec![read(&rel(base, &g.tls_root))?],
            tls,
            msp_id: g.msp_id.clone(),
            client: load_identity(&g.msp_id, &rel(base, &g.cert), &rel(base, &g.key))?,
            consumer,
        });
    }
    if gateways.is_empty() {
        bail!("{}: no gateways", path.display());
    }
    let regulator = match &c.regulator {
        Some(r) => Some((
            r.gateway.min(gateways.len() - 1),
            load_identity(&r.msp_id, &rel(base, &r.cert), &rel(base, &r.key))?,
        )),
        None => None,
    };
    let pids = match &c.pids {
        Some(p) => serde_json::from_slice(&read(&rel(base, p))?).unwrap_or_default(),
        None => BTreeMap::new(),
    };
    Ok(Target {
        source: format!("connection file {}", path.display()),
        channel: c.channel,
        chaincode: c.chaincode,
        validating_peers: c.validating_peers.unwrap_or(gateways.len()),
        orderers: c.orderers.unwrap_or(3),
        orderer_verifies: c.orderer_verifies.unwrap_or(1),
        gateways,
        regulator,
        pids,
    })
}

/// Registers and enrolls `who` (a client of `kind`) with the org's CA,
/// unless already enrolled.
pub(super) fn ensure_identity(
    dir: &Path,
    info: &crate::network::NetworkInfo,
    org: &crate::network::OrgInfo,
    who: &str,
    kind: &str,
) -> Result<PathBuf> {
    let odir = dir.join("orgs").join(&org.name);
    let out = odir.join(who);
    if out.join("cert.pem").exists() {
        return Ok(out);
    }
    register_and_enroll(
        &odir,
        &org.ca,
        who,
        "client",
        kind,
        "localhost,127.0.0.1",
        info.key_type,
    )
    .with_context(|| {
        format!(
            "registering and enrolling {who} with {}'s CA (is the network up?)",
            org.name
        )
    })?;
    Ok(out)
}

/// The connection file for the local network in `dir`, enrolling the
/// benchmark's identities (`bench-client`: enterprise, `bench-consumer`:
/// consumer, in every org; `bench-regulator` if no org has a regulator).
pub(super) fn local_connection(dir: &Path) -> Result<Connection> {
    let dir = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()?.join(dir)
    };
    let info: crate::network::NetworkInfo =
        serde_json::from_slice(&read(&dir.join("network.json")).with_context(|| {
            format!(
                "no network in {} (start one with `qcss network up --dir {}`)",
                dir.display(),
                dir.display()
            )
        })?)?;
    if !info.contract_deployed {
        bail!(
            "the traceability contract is not deployed on the network in {}",
            dir.display()
        );
    }
    let mut gateways = Vec::new();
    for o in &info.orgs {
        let client = ensure_identity(&dir, &info, o, "bench-client", "enterprise")?;
        let consumer = ensure_identity(&dir, &info, o, "bench-consumer", "consumer")?;
        gateways.push(GatewayConn {
            endpoint: o.peer.clone(),
            server_name: None,
            tls_root: dir.join("orgs").join(&o.name).join("ca/tls-ca-cert.pem"),
            tls_cert: Some(client.join("tls-cert.pem")),
            tls_key: Some(client.join("tls-key.pem")),
            msp_id: o.msp_id.clone(),
            cert: client.join("cert.pem"),
            key: client.join("key.pem"),
            consumer: Some(IdentityConn {
                msp_id: o.msp_id.clone(),
                cert: consumer.join("cert.pem"),
                key: consumer.join("key.pem"),
                gateway: gateways.len(),
            }),
        });
    }
    let regulator = info.orgs.iter().enumerate().find_map(|(i, o)| {
        o.identities
            .iter()
            .find(|(_, (_, kinds))| kinds.iter().any(|k| k == "regulator"))
            .map(|(name, _)| (i, dir.join("orgs").join(&o.name).join(name)))
    });
    let (rg, rdir) = match regulator {
        Some(r) => r,
        None => (
            0,
            ensure_identity(&dir, &info, &info.orgs[0], "bench-regulator", "regulator")?,
        ),
    };
    // Every peer's Gateway submits to the Raft leader once a follower has
    // told it where the leader is (docs/peer.md, `Submit`): the leader alone
    // checks the envelope, bar one forward per peer at the start.
    Ok(Connection {
        channel: info.channel.clone(),
        chaincode: crate::network::CONTRACT.into(),
        regulator: Some(IdentityConn {
            msp_id: info.orgs[rg].msp_id.clone(),
            cert: rdir.join("cert.pem"),
            key: rdir.join("key.pem"),
            gateway: rg,
        }),
        gateways,
        validating_peers: Some(info.orgs.len()),
        orderers: Some(info.orderers.len()),
        orderer_verifies: Some(1),
        pids: Some(dir.join("pids.json")),
    })
}

// ---------------------------------------------------------------- setup

/// One connection to `g`'s peer, and a Gateway client over it for each
/// of `ids`.
pub(super) async fn connect(
    g: &Gw,
    ids: &[Arc<SigningIdentity>],
    channel: &str,
) -> Result<Vec<GatewayClient>> {
    let tls = qcss_network::tls::client_tls(
        &g.roots,
        g.tls.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
        &g.server_name,
    );
    let ch = qcss_network::tls::connect(&g.endpoint, tls)
        .await
        .map_err(|e| {
            anyhow!(
                "cannot connect to {}: {}",
                g.endpoint,
                qcss_network::tls::error_chain(&e)
            )
        })?;
    Ok(ids
        .iter()
        .map(|id| GatewayClient::new(ch.clone(), id.clone(), channel))
        .collect())
}

pub(super) async fn submit_ok(
    g: &mut GatewayClient,
    cc: &str,
    f: &str,
    arg: &Value,
) -> Result<Vec<u8>> {
    let a = arg.to_string();
    let c = g
        .submit(cc, f, &[a.as_bytes()])
        .await
        .map_err(|e| anyhow!("{f}: {e}"))?;
    if c.code != TxValidationCode::Valid {
        bail!("{f}: transaction {} is {}", c.tx_id, c.code.as_str_name());
    }
    Ok(c.result)
}

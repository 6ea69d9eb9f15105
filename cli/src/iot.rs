//! `qcss iot …`: IoT state channels (docs/iot.md). `simulate` opens a
//! channel on the ledger, runs a device and a gateway exchanging readings
//! over a real TCP connection on 127.0.0.1 (co-signing every update), keeps
//! the gateway's copy of the readings and states in `--store`, and closes
//! on the ledger; `close`, `challenge`, `settle`, `show`, `alert` and
//! `evidence` submit the contract's other functions; `prove` gives one
//! reading's inclusion proof from the stored readings and `verify` checks
//! it against the settled root read from the ledger. The protocol itself is
//! `qcss-iot`; this module only moves bytes and files.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use qcss_iot::keys::{self, Key};
use qcss_iot::proof::MemStore;
use qcss_iot::reading::{MAX_READING_BYTES, MMR};
use qcss_iot::state::{MAX_STATE_BYTES, check_sig};
use qcss_iot::wire::{MAX_UPDATE_READINGS, Message};
use qcss_iot::{
    Channel, ChannelId, ChannelParams, Party, Reading, ReadingProof, Schema, SignedState, State,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::peer::Conn;

const DEFAULT_CHAINCODE: &str = "traceability";
/// How long either side waits for the other's next frame.
const FRAME_TIMEOUT: Duration = Duration::from_secs(30);
/// Most readings `simulate` runs (the file and the proofs stay manageable).
const MAX_SIMULATED: u64 = 10_000_000;
/// A proof file is small; anything larger is not one.
const MAX_PROOF_FILE: u64 = 64 * 1024;

/// `qcss iot …`.
#[derive(Debug, Subcommand)]
pub(crate) enum IotCommand {
    /// Make a device's or gateway's Ed25519 key file (mode 0600) if it does
    /// not exist; print its public key (a device's goes in `bind_device`'s
    /// `channel_key`).
    Keygen {
        /// The key file.
        file: PathBuf,
    },
    /// Open a channel, exchange readings between a device and a gateway
    /// over TCP on 127.0.0.1, and close it on the ledger.
    Simulate(SimulateArgs),
    /// Close an open channel with a stored co-signed state (a final one
    /// settles at once, any other starts the challenge window).
    Close(SubmitArgs),
    /// Replace a closing channel's state with a higher co-signed one.
    Challenge(SubmitArgs),
    /// Settle a closing channel after its challenge window.
    Settle(ChannelArgs),
    /// Print the channel's record on the ledger (JSON).
    Show(ChannelArgs),
    /// One reading's inclusion proof (JSON) from the stored readings.
    Prove(ProveArgs),
    /// Check a proof file against the settled root read from the ledger.
    Verify(VerifyArgs),
    /// Raise the batch's alert for one out-of-limit reading of a settled
    /// channel (its proof is built from the stored readings).
    Alert(AlertArgs),
    /// Submit equivocation evidence: two different states with the same seq
    /// signed by one party (files of `{"state": HEX, "sig": HEX}`).
    Evidence(EvidenceArgs),
}

/// Where a channel's files are kept and which channel.
#[derive(Debug, Args)]
pub(crate) struct ChannelArgs {
    #[command(flatten)]
    conn: Conn,
    /// The traceability chaincode's name on the channel.
    #[arg(long, default_value = DEFAULT_CHAINCODE)]
    chaincode: String,
    /// Folder of channel data (one sub-folder per channel id).
    #[arg(long, default_value = "qcss-iot")]
    store: PathBuf,
    /// The channel id (64 hex digits).
    #[arg(value_name = "CHANNEL")]
    id: String,
}

/// `close` / `challenge`.
#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    #[command(flatten)]
    ch: ChannelArgs,
    /// The stored state's seq to submit (default: the latest).
    #[arg(long)]
    seq: Option<u64>,
}

/// How `simulate` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CloseMode {
    /// A final state both signed: settled at once.
    Cooperative,
    /// The latest (non-final) state: starts the challenge window.
    Unilateral,
    /// Leave the channel open.
    None,
}

/// `qcss iot simulate`.
#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    #[command(flatten)]
    conn: Conn,
    /// The traceability chaincode's name on the channel.
    #[arg(long, default_value = DEFAULT_CHAINCODE)]
    chaincode: String,
    /// Folder of channel data (one sub-folder per channel id).
    #[arg(long, default_value = "qcss-iot")]
    store: PathBuf,
    /// The bound device, `{msp}/{name}`, with a registered channel key.
    #[arg(long)]
    device: String,
    /// The device's key file (`qcss iot keygen`).
    #[arg(long)]
    device_key: PathBuf,
    /// The gateway's key file; made if missing.
    #[arg(long)]
    gateway_key: PathBuf,
    /// The batch, `{gtin}/{lot}`.
    #[arg(long)]
    batch: String,
    /// The schema: JSON array of `{"type", "unit", "min", "max"}`.
    #[arg(
        long,
        default_value = r#"[{"type":"gs1:Temperature","unit":"CEL","min":0.0,"max":8.0}]"#
    )]
    schema: String,
    /// Readings to exchange.
    #[arg(long, default_value_t = 1000)]
    readings: u64,
    /// Readings per co-signed update (at most 1024).
    #[arg(long, default_value_t = 100)]
    per_update: usize,
    /// Seconds a unilateral close waits for a newer state.
    #[arg(long, default_value_t = 600)]
    challenge_secs: u64,
    /// Channel nonce (default: the current time in nanoseconds).
    #[arg(long)]
    nonce: Option<u64>,
    /// Set reading SEQ's first measure to VALUE (`SEQ=VALUE`, repeatable).
    #[arg(long = "spike", value_parser = parse_spike)]
    spikes: Vec<(u64, f64)>,
    /// How to end.
    #[arg(long, value_enum, default_value_t = CloseMode::Cooperative)]
    close: CloseMode,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    json: bool,
}

/// `qcss iot prove`.
#[derive(Debug, Args)]
pub(crate) struct ProveArgs {
    /// Folder of channel data.
    #[arg(long, default_value = "qcss-iot")]
    store: PathBuf,
    /// Prove against the stored state with this seq (default: the latest;
    /// use the settled state's seq if a challenge settled an earlier one).
    #[arg(long)]
    state_seq: Option<u64>,
    /// Write the proof here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The channel id.
    channel: String,
    /// The reading's number in the channel (0 is the first).
    seq: u64,
}

/// `qcss iot verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    conn: Conn,
    /// The traceability chaincode's name on the channel.
    #[arg(long, default_value = DEFAULT_CHAINCODE)]
    chaincode: String,
    /// The proof file `qcss iot prove` wrote.
    proof: PathBuf,
}

/// `qcss iot alert`.
#[derive(Debug, Args)]
pub(crate) struct AlertArgs {
    #[command(flatten)]
    ch: ChannelArgs,
    /// The reading's number in the channel.
    seq: u64,
}

/// `qcss iot evidence`.
#[derive(Debug, Args)]
pub(crate) struct EvidenceArgs {
    #[command(flatten)]
    ch: ChannelArgs,
    /// Who signed both: `device` or `gateway`.
    #[arg(long)]
    party: String,
    /// The first signed state.
    #[arg(long)]
    a: PathBuf,
    /// The second signed state.
    #[arg(long)]
    b: PathBuf,
}

fn parse_spike(s: &str) -> Result<(u64, f64), String> {
    let (seq, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected SEQ=VALUE"))?;
    let seq = seq.parse().map_err(|e| format!("{seq:?}: {e}"))?;
    let v: f64 = v.parse().map_err(|e| format!("{v:?}: {e}"))?;
    if !v.is_finite() {
        return Err(format!("{v} is not a finite number"));
    }
    Ok((seq, v))
}

pub(crate) fn run(cmd: IotCommand) -> Result<()> {
    match cmd {
        IotCommand::Keygen { file } => {
            let k = crate::chain::read_or_new_key(&file)?;
            println!("{}", Key::from_secret(k.secret()).public());
            Ok(())
        }
        IotCommand::Simulate(a) => simulate(a),
        IotCommand::Close(a) => submit_stored(a, "iot_close"),
        IotCommand::Challenge(a) => submit_stored(a, "iot_challenge"),
        IotCommand::Settle(a) => {
            let v = tx(&a.conn, &a.chaincode, "iot_settle", a.id.as_bytes())?;
            print_record(&v);
            Ok(())
        }
        IotCommand::Show(a) => {
            let v = query(&a.conn, &a.chaincode, "iot_get_channel", &a.id)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        IotCommand::Prove(a) => prove(a),
        IotCommand::Verify(a) => verify(a),
        IotCommand::Alert(a) => alert(a),
        IotCommand::Evidence(a) => evidence(a),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

/// Submits `f(arg)`; its JSON result with `_block` and `_tx_id`, or the
/// contract's refusal as the error.
fn tx(conn: &Conn, cc: &str, f: &str, arg: &[u8]) -> Result<Value> {
    let (c, mut v) = conn.submit_json(cc, f, arg)?;
    if let Value::Object(o) = &mut v {
        o.insert("_block".into(), json!(c.block));
        o.insert("_tx_id".into(), json!(c.tx_id));
    }
    Ok(v)
}

fn query(conn: &Conn, cc: &str, f: &str, arg: &str) -> Result<Value> {
    conn.evaluate_json(cc, f, arg.as_bytes())
}

fn print_record(v: &Value) {
    println!(
        "channel {} {} (state seq {}, {} readings{}){}",
        v["id"].as_str().unwrap_or("?"),
        v["status"].as_str().unwrap_or("?"),
        v["state"]["state"]
            .as_str()
            .and_then(decode_hex_state)
            .map_or("-".into(), |s| s.seq.to_string()),
        v["state"]["state"]
            .as_str()
            .and_then(decode_hex_state)
            .map_or("-".into(), |s| s.count.to_string()),
        v["deadline"]
            .as_i64()
            .filter(|_| v["status"] == "closing")
            .map_or(String::new(), |d| format!(", challenge window until {d}")),
        v["_block"]
            .as_u64()
            .map_or(String::new(), |b| format!(" in block {b}")),
    );
    if let Some(alerts) = v["alerts"].as_array().filter(|a| !a.is_empty()) {
        println!("alerts raised on the batch: {}", alerts.len());
    }
}

fn decode_hex_state(h: &str) -> Option<State> {
    if h.len() > 2 * MAX_STATE_BYTES {
        return None;
    }
    State::decode(&hex::decode(h).ok()?).ok()
}

// ------------------------------------------------------------ channel files

/// A channel's folder: `params.json`, `readings.bin` (every reading's
/// canonical encoding, back to back, all the same size), `states.jsonl`
/// (every co-signed state, one per line, by seq).
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(store: &Path, channel: &str) -> Result<Self> {
        let id: ChannelId = channel.parse().map_err(|e| anyhow!("channel: {e}"))?;
        Ok(Self {
            dir: store.join(id.to_string()),
        })
    }

    fn params(&self) -> Result<ChannelParams> {
        let p = self.dir.join("params.json");
        let bytes = crate::whole_file::read_bounded(&p, 64 * 1024, "")?;
        let params: ChannelParams =
            serde_json::from_slice(&bytes).with_context(|| format!("{}", p.display()))?;
        params
            .check()
            .map_err(|e| anyhow!("{}: {e}", p.display()))?;
        Ok(params)
    }

    fn states(&self) -> Result<Vec<SignedState>> {
        let p = self.dir.join("states.jsonl");
        let f = std::fs::File::open(&p).with_context(|| format!("opening {}", p.display()))?;
        let mut out = Vec::new();
        for (i, line) in BufReader::new(f).lines().enumerate() {
            let line = line.with_context(|| format!("reading {}", p.display()))?;
            if line.len() > 4 * MAX_STATE_BYTES + 512 {
                bail!("{} line {} is longer than any state", p.display(), i + 1);
            }
            out.push(
                serde_json::from_str(&line)
                    .with_context(|| format!("{} line {}", p.display(), i + 1))?,
            );
        }
        Ok(out)
    }

    fn state(&self, seq: Option<u64>) -> Result<SignedState> {
        let states = self.states()?;
        match seq {
            None => states.into_iter().last(),
            Some(s) => states.into_iter().find(|x| x.state.seq == s),
        }
        .ok_or_else(|| {
            anyhow!(
                "no stored state{} in {}",
                seq.map_or(String::new(), |s| format!(" with seq {s}")),
                self.dir.display()
            )
        })
    }

    /// The first `count` readings and the full range over them.
    fn range(&self, params: &ChannelParams, count: u64) -> Result<(Vec<Reading>, MemStore)> {
        let size = 18 + 8 * params.schema.len();
        let p = self.dir.join("readings.bin");
        let mut f = BufReader::new(
            std::fs::File::open(&p).with_context(|| format!("opening {}", p.display()))?,
        );
        let id = params.id();
        let mut store = MemStore::default();
        let mut readings = Vec::with_capacity(count.min(MAX_SIMULATED) as usize);
        let mut buf = vec![0u8; size];
        for i in 0..count {
            f.read_exact(&mut buf)
                .with_context(|| format!("{} ends before reading {i}", p.display()))?;
            let r = Reading::decode(&buf).map_err(|e| anyhow!("{}: {e}", p.display()))?;
            if r.seq != i {
                bail!("{}: reading {i} is numbered {}", p.display(), r.seq);
            }
            store.append(&MMR, r.leaf(&id));
            readings.push(r);
        }
        Ok((readings, store))
    }
}

fn submit_stored(a: SubmitArgs, f: &str) -> Result<()> {
    let files = Files::new(&a.ch.store, &a.ch.id)?;
    let state = files.state(a.seq)?;
    let arg = json!({"channel": a.ch.id, "state": state}).to_string();
    let v = tx(&a.ch.conn, &a.ch.chaincode, f, arg.as_bytes())?;
    print_record(&v);
    Ok(())
}

// ------------------------------------------------------------------ simulate

/// What the gateway kept and counted.
struct GatewayReport {
    updates: u64,
    update_bytes: u64,
    ack_bytes: u64,
}

fn simulate(a: SimulateArgs) -> Result<()> {
    if a.readings == 0 || a.readings > MAX_SIMULATED {
        bail!("--readings must be 1 to {MAX_SIMULATED}");
    }
    if a.per_update == 0 || a.per_update > MAX_UPDATE_READINGS {
        bail!("--per-update must be 1 to {MAX_UPDATE_READINGS}");
    }
    let schema: Schema = serde_json::from_str(&a.schema).context("--schema")?;
    schema.check().map_err(|e| anyhow!("--schema: {e}"))?;
    let device_key = Key::from_secret(crate::chain::read_key(&a.device_key)?.secret());
    let gateway_key = Key::from_secret(crate::chain::read_or_new_key(&a.gateway_key)?.secret());
    let nonce = a.nonce.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });

    // Open on the ledger; the ledger computes the parameters (its own name,
    // the gateway's identity from our certificate) and we check them.
    let open = json!({"device": a.device, "batch": a.batch,
        "gateway_key": gateway_key.public().to_string(), "schema": schema,
        "challenge_secs": a.challenge_secs, "nonce": nonce});
    let rec = tx(
        &a.conn,
        &a.chaincode,
        "iot_open",
        open.to_string().as_bytes(),
    )?;
    let params: ChannelParams =
        serde_json::from_value(rec["params"].clone()).context("iot_open's parameters")?;
    let id = params.id();
    if rec["id"] != json!(id.to_string()) {
        bail!(
            "the ledger's channel id {} is not the hash of its parameters {id}",
            rec["id"]
        );
    }
    if params.device_key != device_key.public() || params.gateway_key != gateway_key.public() {
        bail!("the ledger bound other keys than ours: {}", rec["params"]);
    }
    if params.ledger != a.conn.channel()? {
        bail!(
            "the ledger says it is {}, we asked {}",
            params.ledger,
            a.conn.channel()?
        );
    }
    let files = Files {
        dir: a.store.join(id.to_string()),
    };
    std::fs::create_dir_all(&files.dir)
        .with_context(|| format!("creating {}", files.dir.display()))?;
    std::fs::write(
        files.dir.join("params.json"),
        serde_json::to_vec_pretty(&params)?,
    )?;

    let started = Instant::now();
    let (last, report) =
        runtime()?.block_on(exchange(&a, &params, &files, device_key, gateway_key))?;
    let elapsed = started.elapsed();
    let rate = a.readings as f64 / elapsed.as_secs_f64();

    let (closed, tx_block) = match a.close {
        CloseMode::None => (Value::Null, None),
        CloseMode::Cooperative | CloseMode::Unilateral => {
            let arg = json!({"channel": id.to_string(), "state": last}).to_string();
            let v = tx(&a.conn, &a.chaincode, "iot_close", arg.as_bytes())?;
            let b = v["_block"].as_u64();
            (v, b)
        }
    };
    let summary = json!({
        "channel": id.to_string(),
        "store": files.dir,
        "readings": a.readings,
        "updates": report.updates,
        "per_update": a.per_update,
        "seconds": elapsed.as_secs_f64(),
        "readings_per_sec": rate,
        "state_bytes": last.state.encode().len(),
        "update_frame_bytes_avg": report.update_bytes as f64 / report.updates as f64,
        "ack_frame_bytes": report.ack_bytes / report.updates.max(1),
        "final_seq": last.state.seq,
        "root": last.state.root.to_string(),
        "status": closed["status"],
        "block": tx_block,
        "alerts": closed["alerts"],
    });
    if a.json {
        println!("{summary}");
    } else {
        println!("channel {id}");
        println!(
            "  {} readings in {} co-signed updates over TCP in {:.2} s ({:.0} readings/s)",
            a.readings,
            report.updates,
            elapsed.as_secs_f64(),
            rate
        );
        println!(
            "  state {} bytes; update frame {:.0} bytes on average, ack {} bytes",
            last.state.encode().len(),
            report.update_bytes as f64 / report.updates as f64,
            report.ack_bytes / report.updates.max(1)
        );
        println!("  root {} at seq {}", last.state.root, last.state.seq);
        println!("  readings and states kept in {}", files.dir.display());
        if !closed.is_null() {
            print_record(&closed);
        }
    }
    Ok(())
}

/// The synthetic readings: each measure swings inside its limits (or
/// around 20 without them); `--spike` overrides the first measure.
fn synth(schema: &Schema, seq: u64, time: i64, spikes: &[(u64, f64)]) -> Reading {
    let phase = (seq as f64 / 50.0).sin();
    let mut values: Vec<f64> = schema
        .0
        .iter()
        .map(|m| match (m.min, m.max) {
            (Some(lo), Some(hi)) => (lo + hi) / 2.0 + phase * (hi - lo) * 0.4,
            (Some(lo), None) => lo + 1.0 + phase.abs(),
            (None, Some(hi)) => hi - 1.0 - phase.abs(),
            (None, None) => 20.0 + phase,
        })
        .map(|v| (v * 100.0).round() / 100.0)
        .collect();
    if let Some((_, v)) = spikes.iter().find(|(s, _)| *s == seq) {
        values[0] = *v;
    }
    Reading { seq, time, values }
}

async fn exchange(
    a: &SimulateArgs,
    params: &ChannelParams,
    files: &Files,
    device_key: Key,
    gateway_key: Key,
) -> Result<(SignedState, GatewayReport)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the gateway's socket on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let gw_params = params.clone();
    let dir = files.dir.clone();
    let gateway = tokio::spawn(async move {
        let (sock, _) = tokio::time::timeout(FRAME_TIMEOUT, listener.accept())
            .await
            .map_err(|_| anyhow!("no device connected within {FRAME_TIMEOUT:?}"))??;
        run_gateway(sock, gw_params, &dir, gateway_key).await
    });
    let sock = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to the gateway at {addr}"))?;
    sock.set_nodelay(true)?;
    let last = run_device(a, sock, params.clone(), device_key).await?;
    let report = gateway
        .await
        .map_err(|e| anyhow!("the gateway task: {e}"))??;
    Ok((last, report))
}

async fn read_frame(sock: &mut TcpStream) -> Result<Option<Message>> {
    let mut prefix = [0u8; 4];
    match tokio::time::timeout(FRAME_TIMEOUT, sock.read_exact(&mut prefix)).await {
        Err(_) => bail!("no frame within {FRAME_TIMEOUT:?}"),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Ok(r) => r.context("reading a frame")?,
    };
    let len = Message::frame_len(prefix)?;
    let mut body = vec![0u8; len];
    tokio::time::timeout(FRAME_TIMEOUT, sock.read_exact(&mut body))
        .await
        .map_err(|_| anyhow!("a frame's body did not arrive within {FRAME_TIMEOUT:?}"))?
        .context("reading a frame's body")?;
    Ok(Some(Message::decode(&body)?))
}

/// The device: keeps only its [`Channel`] (state and peaks); proposes each
/// update signed, and keeps the gateway's counter-signature.
async fn run_device(
    a: &SimulateArgs,
    mut sock: TcpStream,
    params: ChannelParams,
    key: Key,
) -> Result<SignedState> {
    let mut ch = Channel::open(params.clone())?;
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64
        - a.readings as i64;
    let mut last: Option<SignedState> = None;
    let mut next = 0u64;
    let mut finished = false;
    while !finished {
        let end = (next + a.per_update as u64).min(a.readings);
        let readings: Vec<Reading> = (next..end)
            .map(|i| synth(&params.schema, i, start + i as i64, &a.spikes))
            .collect();
        next = end;
        let is_final = a.close == CloseMode::Cooperative && next == a.readings;
        finished = next == a.readings;
        let state = ch.apply(&readings, is_final)?.clone();
        let device_sig = key.sign(&state, Party::Device);
        let frame = Message::Update {
            state: state.clone(),
            device_sig,
            readings,
        }
        .frame();
        sock.write_all(&frame).await.context("sending an update")?;
        match read_frame(&mut sock).await? {
            Some(Message::Ack { seq, gateway_sig }) if seq == state.seq => {
                check_sig(&state, &params, Party::Gateway, &gateway_sig, &keys::verify)?;
                last = Some(SignedState {
                    state,
                    device_sig,
                    gateway_sig,
                });
            }
            Some(Message::Refuse(why)) => bail!("the gateway refused update {}: {why}", state.seq),
            Some(other) => bail!("the gateway answered update {} with {other:?}", state.seq),
            None => bail!("the gateway hung up at update {}", state.seq),
        }
    }
    sock.shutdown().await.ok();
    last.ok_or_else(|| anyhow!("no update was co-signed"))
}

/// The gateway: checks each update against its own [`Channel`], stores the
/// readings and the co-signed state, and counter-signs.
async fn run_gateway(
    mut sock: TcpStream,
    params: ChannelParams,
    dir: &Path,
    key: Key,
) -> Result<GatewayReport> {
    sock.set_nodelay(true)?;
    let mut ch = Channel::open(params.clone())?;
    let mut readings_file = BufWriter::new(std::fs::File::create(dir.join("readings.bin"))?);
    let mut states_file = BufWriter::new(std::fs::File::create(dir.join("states.jsonl"))?);
    let mut report = GatewayReport {
        updates: 0,
        update_bytes: 0,
        ack_bytes: 0,
    };
    while let Some(msg) = read_frame(&mut sock).await? {
        let Message::Update {
            state,
            device_sig,
            readings,
        } = msg
        else {
            bail!("the device sent {msg:?} instead of an update");
        };
        let size = Message::Update {
            state: state.clone(),
            device_sig,
            readings: Vec::new(),
        }
        .frame()
        .len()
            + readings.len() * (18 + 8 * params.schema.len());
        let checked = check_sig(&state, &params, Party::Device, &device_sig, &keys::verify)
            .and_then(|()| ch.expect(&readings, &state).map(|_| ()));
        if let Err(e) = checked {
            sock.write_all(&Message::Refuse(e.to_string()).frame())
                .await?;
            continue;
        }
        let gateway_sig = key.sign(&state, Party::Gateway);
        for r in &readings {
            let enc = r.encode();
            debug_assert!(enc.len() <= MAX_READING_BYTES);
            readings_file.write_all(&enc)?;
        }
        let signed = SignedState {
            state,
            device_sig,
            gateway_sig,
        };
        serde_json::to_writer(&mut states_file, &signed)?;
        states_file.write_all(b"\n")?;
        let ack = Message::Ack {
            seq: signed.state.seq,
            gateway_sig,
        }
        .frame();
        sock.write_all(&ack).await?;
        report.updates += 1;
        report.update_bytes += size as u64;
        report.ack_bytes += ack.len() as u64;
    }
    readings_file.flush()?;
    states_file.flush()?;
    readings_file.get_ref().sync_all()?;
    states_file.get_ref().sync_all()?;
    Ok(report)
}

// ------------------------------------------------------------ prove, verify

fn build_proof(files: &Files, state: &State, seq: u64) -> Result<ReadingProof> {
    if seq >= state.count {
        bail!(
            "reading {seq} is not in state seq {} ({} readings)",
            state.seq,
            state.count
        );
    }
    let params = files.params()?;
    let (readings, store) = files.range(&params, state.count)?;
    if store.peaks.root(&MMR) != state.root {
        bail!(
            "the stored readings do not give state seq {}'s root {}",
            state.seq,
            state.root
        );
    }
    let reading = readings[seq as usize].clone();
    Ok(ReadingProof::build(&store, reading, state.count)?)
}

fn prove(a: ProveArgs) -> Result<()> {
    let files = Files::new(&a.store, &a.channel)?;
    let signed = files.state(a.state_seq)?;
    let proof = build_proof(&files, &signed.state, a.seq)?;
    let out = json!({"channel": a.channel, "state_seq": signed.state.seq,
        "state_count": signed.state.count, "root": signed.state.root, "proof": proof});
    let text = serde_json::to_string_pretty(&out)?;
    match a.out {
        Some(p) => {
            std::fs::write(&p, text + "\n").with_context(|| format!("writing {}", p.display()))?;
            eprintln!("proof of reading {} written to {}", a.seq, p.display());
        }
        None => println!("{text}"),
    }
    Ok(())
}

/// The settled, signature-checked state of `channel` from the ledger.
fn settled(conn: &Conn, cc: &str, channel: &str) -> Result<(ChannelParams, SignedState)> {
    let rec = query(conn, cc, "iot_get_channel", channel)?;
    if rec["status"] != "settled" {
        bail!(
            "channel {channel} is {} on the ledger, not settled",
            rec["status"]
        );
    }
    let params: ChannelParams = serde_json::from_value(rec["params"].clone())?;
    let signed: SignedState = serde_json::from_value(rec["state"].clone())?;
    signed.check(&params, &keys::verify)?;
    Ok((params, signed))
}

fn verify(a: VerifyArgs) -> Result<()> {
    let bytes = crate::whole_file::read_bounded(&a.proof, MAX_PROOF_FILE, "")?;
    let v: Value = serde_json::from_slice(&bytes).context("the proof file")?;
    let channel = v["channel"]
        .as_str()
        .ok_or_else(|| anyhow!("the proof file names no channel"))?;
    let proof: ReadingProof =
        serde_json::from_value(v["proof"].clone()).context("the proof file's proof")?;
    let (params, signed) = settled(&a.conn, &a.chaincode, channel)?;
    proof.reading.check(&params.schema)?;
    proof.verify(&signed.state).map_err(|e| {
        anyhow!(
            "NOT verified: {e} (settled root {}, seq {}, {} readings)",
            signed.state.root,
            signed.state.seq,
            signed.state.count
        )
    })?;
    let values: Vec<String> = proof
        .reading
        .values
        .iter()
        .zip(&params.schema.0)
        .map(|(v, m)| format!("{}={v}{}", m.kind, m.unit))
        .collect();
    println!(
        "verified: reading {} of channel {channel} ({} at {}) is in the settled root {} (seq {}, {} readings, signed by device {} and gateway {})",
        proof.reading.seq,
        values.join(", "),
        proof.reading.time,
        signed.state.root,
        signed.state.seq,
        signed.state.count,
        params.device,
        params.gateway,
    );
    let out = proof.reading.violations(&params.schema);
    if !out.is_empty() {
        println!("  outside the schema's limits: measure(s) {out:?}");
    }
    Ok(())
}

fn alert(a: AlertArgs) -> Result<()> {
    let files = Files::new(&a.ch.store, &a.ch.id)?;
    let (_, signed) = settled(&a.ch.conn, &a.ch.chaincode, &a.ch.id)?;
    let proof = build_proof(&files, &signed.state, a.seq)?;
    let arg = json!({"channel": a.ch.id, "proof": proof}).to_string();
    let v = tx(&a.ch.conn, &a.ch.chaincode, "iot_alert", arg.as_bytes())?;
    print_record(&v);
    Ok(())
}

fn evidence(a: EvidenceArgs) -> Result<()> {
    let party: Party = a.party.parse()?;
    let read = |p: &Path| -> Result<Value> {
        serde_json::from_slice(&crate::whole_file::read_bounded(p, 4096, "")?)
            .with_context(|| format!("{}", p.display()))
    };
    let arg =
        json!({"channel": a.ch.id, "party": party, "a": read(&a.a)?, "b": read(&a.b)?}).to_string();
    let v = tx(&a.ch.conn, &a.ch.chaincode, "iot_evidence", arg.as_bytes())?;
    println!(
        "equivocation by the {} {} at seq {} recorded as a quality incident (event {}){}",
        v["party"].as_str().unwrap_or("?"),
        v["against"].as_str().unwrap_or("?"),
        v["seq"],
        v["event_id"].as_str().unwrap_or("?"),
        v["_block"]
            .as_u64()
            .map_or(String::new(), |b| format!(" in block {b}")),
    );
    Ok(())
}

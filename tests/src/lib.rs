//! Helpers for end-to-end tests that start real `qcss` processes on
//! 127.0.0.1: build the binary once, run CLI commands, start and stop
//! nodes. The scenarios themselves are in `tests/tests/*.rs`, one file each.

pub mod browser;
pub mod chain;
pub mod cluster;
pub mod load;
pub mod netns;
pub mod peers;
pub mod trace;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Path of the `qcss` binary, building it (once per test process) so tests
/// never run a stale binary.
pub fn qcss_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("QCSS_BIN") {
            return PathBuf::from(p);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "-p",
                "qcss",
                "--message-format=json-render-diagnostics",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .expect("running cargo build -p qcss");
        assert!(out.status.success(), "cargo build -p qcss failed");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if v["reason"] == "compiler-artifact"
                && v["target"]["name"] == "qcss"
                && let Some(exe) = v["executable"].as_str()
            {
                return PathBuf::from(exe);
            }
        }
        panic!("cargo build did not report the qcss executable");
    })
    .clone()
}

/// Runs `qcss ARGS` in `dir` and returns its output.
pub fn qcss(dir: &Path, args: &[&str]) -> Output {
    Command::new(qcss_bin())
        .args(args)
        .current_dir(dir)
        .env("QCSS_LOG", "warn")
        .output()
        .expect("running qcss")
}

/// Runs `qcss ARGS`, asserts success, returns stdout.
pub fn qcss_ok(dir: &Path, args: &[&str]) -> String {
    let out = qcss(dir, args);
    assert!(
        out.status.success(),
        "qcss {} failed:\nstdout: {}\nstderr: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `qcss ARGS`, asserts failure, returns stderr.
pub fn qcss_err(dir: &Path, args: &[&str]) -> String {
    let out = qcss(dir, args);
    assert!(
        !out.status.success(),
        "qcss {} should have failed; stdout: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `qcss network down --dir net` in its directory when dropped, so a
/// test that fails half-way leaves no `network up` processes behind.
pub struct NetworkDown<'a>(pub &'a Path);

impl Drop for NetworkDown<'_> {
    fn drop(&mut self) {
        let _ = qcss(self.0, &["network", "down", "--dir", "net"]);
    }
}

/// A CA server running as a child process.
pub struct CaNode {
    child: Child,
    /// Its listen address.
    pub addr: String,
    /// Its home directory.
    pub home: PathBuf,
    /// The bootstrap admin secret, if this start created it.
    pub bootstrap_secret: Option<String>,
}

impl CaNode {
    /// Starts `qcss ca start --home HOME --listen 127.0.0.1:PORT` (port 0 =
    /// any free port) and waits until it prints its address.
    pub fn start(home: &Path, port: u16) -> CaNode {
        Self::start_with(home, port, &[])
    }

    /// [`CaNode::start`] with further `qcss ca start` arguments (e.g.
    /// `--msp-id Org2MSP`).
    pub fn start_with(home: &Path, port: u16, extra: &[&str]) -> CaNode {
        let mut child = Command::new(qcss_bin())
            .args(["ca", "start", "--home"])
            .arg(home)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env("QCSS_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting qcss ca");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // Keep draining after the reader is gone so the child never sees EPIPE.
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut addr = None;
        let mut secret = None;
        while Instant::now() < deadline {
            let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
                if let Ok(Some(st)) = child.try_wait() {
                    panic!("qcss ca exited early: {st}");
                }
                continue;
            };
            if let Some(rest) = line.strip_prefix("qcss ca listening on ") {
                addr = rest.split_whitespace().next().map(str::to_string);
            }
            if let Some(i) = line.find("secret ") {
                secret = line[i + 7..].split_whitespace().next().map(str::to_string);
            }
            if line.starts_with("TLS root:") {
                // The last line before a bootstrap line; give it a moment.
                if let Ok(l) = rx.recv_timeout(Duration::from_millis(300))
                    && let Some(i) = l.find("secret ")
                {
                    secret = l[i + 7..].split_whitespace().next().map(str::to_string);
                }
                break;
            }
        }
        CaNode {
            child,
            addr: addr.expect("CA did not report its address"),
            home: home.to_path_buf(),
            bootstrap_secret: secret,
        }
    }

    /// The CA's TLS root file.
    pub fn tls_root(&self) -> PathBuf {
        self.home.join("tls-ca-cert.pem")
    }

    /// `--url ADDR --tls-root FILE` for CLI calls.
    pub fn conn_args(&self) -> Vec<String> {
        vec![
            "--url".into(),
            self.addr.clone(),
            "--tls-root".into(),
            self.tls_root().display().to_string(),
        ]
    }

    /// Stops it (SIGTERM) and starts it again on the same home, on a new
    /// port, with further `qcss ca start` arguments.
    pub fn restart_with(&mut self, extra: &[&str]) {
        terminate(&mut self.child);
        *self = CaNode::start_with(&self.home.clone(), 0, extra);
    }

    /// Stops it with SIGTERM and waits for it to exit.
    pub fn stop(mut self) {
        terminate(&mut self.child);
    }
}

impl Drop for CaNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends signal `sig` (`-STOP`, `-CONT`, `-HUP`, …) to process `pid`;
/// panics if it cannot.
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

/// SIGTERM, wait up to 10 s for the child to exit, then SIGKILL.
fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The unit codes `network up --demo` printed (genuine, recalled, forged),
/// from its `qcss trace '…'` lines.
pub fn demo_codes(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.split_once("qcss trace '").map(|(_, r)| r))
        .filter_map(|r| r.split_once('\'').map(|(code, _)| code.to_owned()))
        .collect()
}

/// A tmpfs mounted on a directory for a disk-full test; unmounted (lazily)
/// when dropped.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a `mib` MiB tmpfs on `dir`. `None` (after printing that the
    /// test is skipped) where mounting is impossible, e.g. without root.
    pub fn mount(dir: &Path, mib: u32) -> Option<Tmpfs> {
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("SKIPPED: cannot mount a tmpfs here (not root?)");
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A free TCP port on 127.0.0.1 for a node, below the ephemeral range so
/// no outgoing connection takes it first (`qcss_network::ports`).
pub fn free_port() -> u16 {
    qcss_network::ports::free_port().expect("a free port on 127.0.0.1")
}

/// Any `qcss` node process (orderer, peer) started with `--config`.
pub struct NodeProc {
    child: Child,
    /// What it printed when it came up.
    pub ready_line: String,
}

impl NodeProc {
    /// Runs `qcss ARGS` and waits (up to 60 s) for a stdout line starting with `ready`.
    pub fn start(args: &[&str], ready: &str, log: &Path) -> NodeProc {
        let mut cmd = Command::new(qcss_bin());
        cmd.args(args);
        Self::spawn_ready(cmd, format!("qcss {}", args.join(" ")), ready, log)
    }

    /// Like [`NodeProc::start`], but runs `program PREFIX... qcss ARGS`
    /// (e.g. `ip netns exec NS qcss orderer start ...`). The program must
    /// exec `qcss` in place, so the child's pid is the node's.
    pub fn start_wrapped(
        program: &str,
        prefix: &[String],
        args: &[&str],
        ready: &str,
        log: &Path,
    ) -> NodeProc {
        let mut cmd = Command::new(program);
        cmd.args(prefix).arg(qcss_bin()).args(args);
        let what = format!("{program} {} qcss {}", prefix.join(" "), args.join(" "));
        Self::spawn_ready(cmd, what, ready, log)
    }

    /// Spawns `cmd` (stderr appended to `log`) and waits for its ready line.
    fn spawn_ready(mut cmd: Command, what: String, ready: &str, log: &Path) -> NodeProc {
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let mut child = cmd
            .env(
                "QCSS_LOG",
                std::env::var("QCSS_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::from(logf))
            .spawn()
            .expect("starting qcss");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // Keep draining after the reader is gone so the child never sees EPIPE.
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.starts_with(ready) => {
                    return NodeProc {
                        child,
                        ready_line: line,
                    };
                }
                Ok(_) => {}
                Err(_) => {
                    if let Ok(Some(st)) = child.try_wait() {
                        let tail = std::fs::read_to_string(log).unwrap_or_default();
                        panic!("{what} exited early ({st}); log:\n{tail}");
                    }
                }
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("{what} did not print {ready:?} within 60 s");
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status if it has exited (without waiting).
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Peak resident memory so far (`VmHWM`), bytes; 0 if unreadable.
    pub fn peak_rss(&self) -> u64 {
        rss_field(self.pid(), "VmHWM:")
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait (then SIGKILL after 10 s).
    pub fn stop(mut self) {
        terminate(&mut self.child);
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `/proc/PID/status` memory field (`VmRSS:`, `VmHWM:`), bytes.
pub fn rss_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// GETs JSON that must answer 200; a 429 (rate-limited) waits 500 ms and
/// asks again, at most `retries_429` times.
pub fn get_json(addr: &str, path: &str, retries_429: u32) -> serde_json::Value {
    let mut tries = 0;
    let (status, body) = loop {
        let (status, body) = http_get(addr, path).expect("API answers");
        if status == 429 && tries < retries_429 {
            tries += 1;
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        break (status, body);
    };
    assert_eq!(status, 200, "{addr}{path}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

/// `GET http://addr/path` with a raw socket; returns (status, body).
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// One HTTP/1.1 POST of `body` (`Connection: close`): (status, body). A
/// server may answer (e.g. 413) and close before the whole body is sent.
pub fn http_post(addr: &str, path: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

/// Whether `openssl` is on the PATH.
pub fn have_openssl() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Runs `openssl ARGS`; returns (success, stdout + stderr).
pub fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed (.ci/run installs it)");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Whether this run must have the standards' own tools (promtool, Python's
/// jsonschema, GS1's event hash reference implementation): `.ci/run` sets
/// `QCSS_REQUIRE_STANDARD_TOOLS`, so CI fails instead of skipping.
pub fn standard_tools_required() -> bool {
    std::env::var_os("QCSS_REQUIRE_STANDARD_TOOLS").is_some()
}

/// Validates EPCIS documents against GS1's EPCIS 2.0 JSON schema
/// (`tests/standards/gs1`, with format checking, by
/// `tests/standards/validate_epcis.py`). `Ok(())` if all are valid,
/// `Err(errors)` if not; `None` (after saying why) if the validator cannot
/// run here and [`standard_tools_required`] is off.
pub fn epcis_schema_check(files: &[&Path]) -> Option<Result<(), String>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("standards/validate_epcis.py");
    let out = Command::new("python3").arg(&script).args(files).output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            assert!(!standard_tools_required(), "python3: {e}");
            eprintln!("SKIPPED the EPCIS schema check: python3: {e}");
            return None;
        }
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.code() {
        Some(0) => Some(Ok(())),
        Some(1) => Some(Err(said)),
        _ => {
            assert!(!standard_tools_required(), "EPCIS validator: {said}");
            eprintln!("SKIPPED the EPCIS schema check: {said}");
            None
        }
    }
}

/// The CBV 2.0 event hashes GS1's reference implementation
/// (`python3 -m epcis_event_hash_generator`, `pip install
/// epcis-event-hash-generator`) computes for the events of an EPCIS JSON
/// document, in document order; `None` (after saying why) if it is not
/// installed and [`standard_tools_required`] is off.
pub fn reference_event_hashes(file: &Path) -> Option<Vec<String>> {
    let out = Command::new("python3")
        .args(["-m", "epcis_event_hash_generator", "-e", "JSON"])
        .arg(file)
        .output();
    let ok = out.as_ref().is_ok_and(|o| o.status.success());
    if !ok {
        let why = match &out {
            Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
            Err(e) => e.to_string(),
        };
        assert!(
            !standard_tools_required(),
            "epcis_event_hash_generator: {why}"
        );
        eprintln!(
            "SKIPPED the event hash cross-check (pip install epcis-event-hash-generator): {why}"
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.expect("checked").stdout).into_owned();
    Some(
        text.lines()
            .filter(|l| l.starts_with("ni:///"))
            .map(str::to_owned)
            .collect(),
    )
}

/// Signs `kind` from `payer` as a public-chain transaction and posts it to
/// the chain node's API at `node`: the node's answer (status, body).
pub fn chain_submit(
    node: &str,
    payer: &qcss_dpos::address::Keypair,
    kind: qcss_dpos::tx::TxKind,
) -> (u16, String) {
    let st = get_json(node, "/v1/status", 30);
    let acct = get_json(node, &format!("/v1/account/{}", payer.address()), 30);
    let tx = qcss_dpos::tx::Tx {
        chain_id: serde_json::from_value(st["chain_id"].clone()).expect("chain id"),
        sender: payer.address(),
        nonce: acct["account"]["nonce"].as_u64().expect("nonce"),
        fee: st["min_fee"].as_u64().expect("min fee"),
        expiry_slot: st["clock_slot"].as_u64().expect("clock slot") + 60,
        kind,
    };
    http_post(
        node,
        "/v1/tx",
        hex::encode(tx.sign(payer).encode()).as_bytes(),
    )
}

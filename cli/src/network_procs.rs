//! The node processes `qcss network up` starts: spawning them (with an
//! optional per-org command prefix), waiting for them to be ready, and the
//! pid file that `down` and `status` read.

use super::*;

fn pids_path(dir: &Path) -> PathBuf {
    dir.join("pids.json")
}

pub(crate) fn read_pids(dir: &Path) -> Pids {
    std::fs::read(pids_path(dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub(crate) fn write_pids(dir: &Path, pids: &Pids) -> Result<()> {
    std::fs::write(pids_path(dir), serde_json::to_vec_pretty(pids)?)?;
    Ok(())
}

pub(crate) fn alive(pid: u32) -> bool {
    // Signal 0 checks existence; a zombie (exited, not yet reaped) counts as
    // gone.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|s| s.split_whitespace().next());
    !matches!(state, None | Some("Z") | Some("X"))
}

/// Starts `qcss ARGS` detached (own process group, output to `log`).
pub(crate) fn spawn(
    dir: &Path,
    name: &str,
    prefix: &[String],
    args: &[&str],
    pids: &mut Pids,
) -> Result<()> {
    use std::os::unix::process::CommandExt;
    if let Some(pid) = pids.get(name)
        && alive(*pid)
    {
        return Ok(()); // already running
    }
    std::fs::create_dir_all(dir.join("logs"))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("logs").join(format!("{name}.log")))?;
    let exe = std::env::current_exe()?;
    // The prefix must exec qcss in place (as `ip netns exec` does), so the
    // recorded pid is the node's.
    let mut cmd = match prefix.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let child = cmd
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    pids.insert(name.to_owned(), child.id());
    write_pids(dir, pids)?;
    Ok(())
}

/// The command prefix for `org`'s nodes.
pub(crate) fn exec_prefix(template: Option<&str>, org: &OrgInfo) -> Vec<String> {
    template
        .map(|t| {
            t.split_whitespace()
                .map(|w| w.replace("{org}", &org.index.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `check` succeeds; fails after `timeout` with the node's log tail.
pub(crate) fn wait(
    dir: &Path,
    name: &str,
    timeout: Duration,
    mut check: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return Ok(());
        }
        if let Some(pid) = read_pids(dir).get(name)
            && !alive(*pid)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log =
        std::fs::read_to_string(dir.join("logs").join(format!("{name}.log"))).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(15).collect();
    bail!(
        "{name} did not come up; last lines of logs/{name}.log:\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )
}

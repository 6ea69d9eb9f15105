//! Network namespaces for fault tests: each node runs in a namespace of its
//! own, all joined by a bridge in a hub namespace, and the test process (in
//! the host namespace) reaches every node through one veth pair. A node is
//! partitioned from the *other nodes* with blackhole routes inside the
//! namespaces, so the test can still talk to it (and see it refuse work).
//!
//! ```text
//!   host ns: qNNNNNh 10.201.X.1 ──┐
//!                                 │  hub ns: bridge br0
//!   ns qNNNNN-n1: eth0 10.201.X.11 ┤
//!   ns qNNNNN-n2: eth0 10.201.X.12 ┤
//!   ns qNNNNN-n3: eth0 10.201.X.13 ┘
//! ```
//!
//! Needs root and `ip` (iproute2); [`Netns::available`] says why not.
//! Everything is named after the test process id and removed on drop.

use std::process::Command;

/// The namespaces of one test.
#[derive(Debug)]
pub struct Netns {
    prefix: String,
    subnet: String,
    nodes: usize,
}

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("running ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// Whether namespaces can be made here: creates and removes a probe.
    pub fn available() -> Result<(), String> {
        let probe = format!("qprobe{}", std::process::id());
        ip(&["netns", "add", &probe])?;
        let veth = ip(&[
            "netns", "exec", &probe, "ip", "link", "add", "a0", "type", "veth", "peer", "name",
            "b0",
        ]);
        let _ = ip(&["netns", "del", &probe]);
        veth.map(|_| ())
    }

    /// Creates the hub, one namespace per node (1..=nodes) and the host link.
    pub fn create(nodes: usize) -> Result<Netns, String> {
        let pid = std::process::id();
        let n = Netns {
            prefix: format!("q{}", pid % 100_000),
            subnet: format!("10.201.{}", pid % 250 + 1),
            nodes,
        };
        n.build().inspect_err(|_| n.remove())?;
        Ok(n)
    }

    fn hub(&self) -> String {
        format!("{}-hub", self.prefix)
    }

    fn host_if(&self) -> String {
        format!("{}h", self.prefix)
    }

    /// The namespace of node `i` (1-based).
    pub fn ns(&self, i: usize) -> String {
        format!("{}-n{i}", self.prefix)
    }

    /// The address of node `i` (1-based).
    pub fn ip(&self, i: usize) -> String {
        format!("{}.{}", self.subnet, 10 + i)
    }

    fn build(&self) -> Result<(), String> {
        let hub = self.hub();
        let host_if = self.host_if();
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", "host", "netns", &hub,
        ])?;
        ip(&["-n", &hub, "link", "set", "host", "master", "br0", "up"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}.1/24", self.subnet),
            "dev",
            &host_if,
        ])?;
        ip(&["link", "set", &host_if, "up"])?;
        for i in 1..=self.nodes {
            let ns = self.ns(i);
            let port = format!("n{i}");
            ip(&["netns", "add", &ns])?;
            ip(&[
                "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns",
                &hub,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0", "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", self.ip(i)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// The command prefix that runs a program in node `i`'s namespace.
    pub fn exec_prefix(&self, i: usize) -> Vec<String> {
        vec!["netns".into(), "exec".into(), self.ns(i)]
    }

    /// Drops every packet between node `i` and every other node (both
    /// directions); the host still reaches it.
    pub fn isolate(&self, i: usize) -> Result<(), String> {
        self.blackholes(i, "add")
    }

    /// Undoes [`Netns::isolate`].
    pub fn heal(&self, i: usize) -> Result<(), String> {
        self.blackholes(i, "del")
    }

    /// Adds or deletes (`op`) blackhole routes between node `i` and the others.
    fn blackholes(&self, i: usize, op: &str) -> Result<(), String> {
        for j in (1..=self.nodes).filter(|j| *j != i) {
            for (from, to) in [(i, j), (j, i)] {
                ip(&[
                    "-n",
                    &self.ns(from),
                    "route",
                    op,
                    "blackhole",
                    &format!("{}/32", self.ip(to)),
                ])?;
            }
        }
        Ok(())
    }

    fn remove(&self) {
        for i in 1..=self.nodes {
            let _ = ip(&["netns", "del", &self.ns(i)]);
        }
        let _ = ip(&["netns", "del", &self.hub()]);
        let _ = ip(&["link", "del", &self.host_if()]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.remove();
    }
}

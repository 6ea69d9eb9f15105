//! A well-behaved Broadcast client for fault tests: it sends pre-signed
//! envelopes in chunks, keeps every answer, and retries exactly what the
//! protocol says may be retried — SERVICE_UNAVAILABLE and envelopes left
//! unanswered by a failed stream — with the *same bytes* (so the same tx
//! id), moving to another orderer when one fails. An envelope is done when
//! it got SUCCESS, or BAD_REQUEST "duplicate tx id" (an earlier attempt was
//! ordered after all).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use qcss_network::orderer_client::OrdererClient;
use qcss_proto::common::{Envelope, Status};

/// How to reach the orderers (cheap to clone into tasks).
#[derive(Debug, Clone)]
pub struct Connector {
    /// gRPC address of each node (index i = node i+1).
    pub addrs: Vec<String>,
    /// TLS roots (PEM).
    pub roots: Vec<Vec<u8>>,
    /// Client TLS certificate (PEM).
    pub cert: Vec<u8>,
    /// Client TLS key (PEM).
    pub key: Vec<u8>,
}

impl Connector {
    /// Connects to node `node` (1-based).
    pub async fn connect(&self, node: usize) -> Result<OrdererClient, String> {
        tokio::time::timeout(
            Duration::from_secs(5),
            OrdererClient::connect(&self.addrs[node - 1], &self.roots, &self.cert, &self.key),
        )
        .await
        .map_err(|_| format!("connecting to node {node} timed out"))?
    }
}

/// One SUCCESS.
#[derive(Debug, Clone)]
pub struct Ack {
    /// The tx id.
    pub tx_id: String,
    /// The block the orderer said it is in.
    pub block: u64,
    /// When the answer arrived.
    pub at: Instant,
    /// The node that answered.
    pub node: usize,
}

/// What happened to a set of envelopes.
#[derive(Debug, Default)]
pub struct Outcome {
    /// SUCCESS answers.
    pub acked: Vec<Ack>,
    /// Envelopes answered "duplicate tx id" on a retry.
    pub duplicates: Vec<String>,
    /// SERVICE_UNAVAILABLE answers (each retried).
    pub unavailable: usize,
    /// Streams that failed or ended with envelopes unanswered.
    pub stream_failures: usize,
    /// Any other answer: (tx id, status, info). Not retried.
    pub unexpected: Vec<(String, i32, String)>,
    /// Envelopes never settled before the deadline.
    pub unsettled: Vec<String>,
}

/// Sends `envs` and retries until each is settled or `deadline` passes.
#[derive(Debug, Clone)]
pub struct Submitter {
    /// Where.
    pub connector: Connector,
    /// The node to start with (1-based); failures move to the next one.
    pub first_node: usize,
    /// Envelopes per Broadcast stream.
    pub chunk: usize,
    /// Pause between chunks (paces the load).
    pub pause: Duration,
    /// Give up (recording `unsettled`) after this.
    pub deadline: Instant,
    /// Incremented per SUCCESS, for the caller to watch.
    pub progress: Arc<AtomicUsize>,
}

impl Submitter {
    /// Runs to completion.
    pub async fn run(self, envs: Vec<(Envelope, String)>) -> Outcome {
        let n = self.connector.addrs.len();
        let mut out = Outcome::default();
        let mut queue: VecDeque<(Envelope, String)> = envs.into();
        let mut node = self.first_node;
        let mut client: Option<OrdererClient> = None;
        while !queue.is_empty() {
            if Instant::now() > self.deadline {
                out.unsettled = queue.into_iter().map(|(_, id)| id).collect();
                break;
            }
            if client.is_none() {
                match self.connector.connect(node).await {
                    Ok(c) => client = Some(c),
                    Err(_) => {
                        node = node % n + 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
            }
            let Some(c) = client.as_mut() else { continue };
            let take = self.chunk.min(queue.len());
            let chunk: Vec<(Envelope, String)> = queue.drain(..take).collect();
            let (resps, failed) = c
                .broadcast_partial(
                    chunk.iter().map(|(e, _)| e.clone()).collect(),
                    Duration::from_secs(40),
                )
                .await;
            let mut retry = false;
            for ((env, id), r) in chunk.iter().zip(&resps) {
                match Status::try_from(r.status).unwrap_or(Status::Unknown) {
                    Status::Success => {
                        let block =
                            qcss_network::envelope::ordered_block(&r.info).unwrap_or(u64::MAX);
                        out.acked.push(Ack {
                            tx_id: id.clone(),
                            block,
                            at: Instant::now(),
                            node,
                        });
                        self.progress.fetch_add(1, Ordering::Relaxed);
                    }
                    Status::BadRequest if r.info.contains("duplicate tx id") => {
                        out.duplicates.push(id.clone());
                    }
                    Status::ServiceUnavailable => {
                        out.unavailable += 1;
                        queue.push_back((env.clone(), id.clone()));
                        retry = true;
                    }
                    _ => out.unexpected.push((id.clone(), r.status, r.info.clone())),
                }
            }
            if failed.is_some() {
                out.stream_failures += 1;
                for item in chunk.into_iter().skip(resps.len()) {
                    queue.push_back(item);
                }
                client = None;
                node = node % n + 1;
                retry = true;
            }
            if retry {
                tokio::time::sleep(Duration::from_millis(100)).await;
            } else if !self.pause.is_zero() {
                tokio::time::sleep(self.pause).await;
            }
        }
        out
    }
}

//! Evaluating the traceability contract in-process: a proposal signed by
//! the web's client identity, endorsed by this peer's own endorser (no
//! gRPC, nothing ordered, nothing written), its result cached until the
//! next block.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use qcss_network::SigningIdentity;
use serde_json::Value;

use crate::endorser::build_proposal;
use crate::node::Peer;
use crate::web::WebError;

/// A cached answer is also dropped after this long (the contract reads the
/// proposal's time, e.g. for permit expiry).
const CACHE_TTL: Duration = Duration::from_secs(5);

/// What the contract answered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// Its JSON result.
    Json(Arc<Value>),
    /// It refused (`unknown batch …`, `counterfeit code: …`): the message.
    Refused(String),
}

/// How the ledger judged a unit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Signed by the batch key; no clone signs.
    Genuine,
    /// Genuine signature but copied: already claimed, scanned elsewhere,
    /// scanned too often.
    PossibleCounterfeit,
    /// The signature is not the batch key's.
    Forged,
    /// A serial beyond the batch quantity.
    Invalid,
    /// No such batch or no code key.
    Unknown,
    /// Not a unit code.
    Malformed,
}

impl Verdict {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verdict::Genuine => "genuine",
            Verdict::PossibleCounterfeit => "possible_counterfeit",
            Verdict::Forged => "forged",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
            Verdict::Malformed => "malformed",
        }
    }

    /// The verdict on a `trace` answer for a code.
    pub(crate) fn of(answer: &Answer) -> Verdict {
        match answer {
            Answer::Json(v) if v["counterfeit_warning"].is_string() => Verdict::PossibleCounterfeit,
            Answer::Json(_) => Verdict::Genuine,
            Answer::Refused(m) => Self::of_refusal(m),
        }
    }

    /// The verdict on a refusal message (the contract's wording).
    pub(crate) fn of_refusal(message: &str) -> Verdict {
        if message.contains("counterfeit code") {
            Verdict::Forged
        } else if message.contains("is beyond batch") {
            Verdict::Invalid
        } else if message.contains("unknown batch") || message.contains("no code key") {
            Verdict::Unknown
        } else {
            Verdict::Malformed
        }
    }
}

type CacheKey = (&'static str, String);

#[derive(Debug, Default)]
struct Cache {
    height: u64,
    entries: HashMap<CacheKey, (Instant, Answer)>,
}

/// Runs read-only contract functions for the web pages.
pub(crate) struct Querier {
    peer: Arc<Peer>,
    identity: SigningIdentity,
    chaincode: String,
    capacity: usize,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for Querier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Querier")
            .field("identity", &self.identity.cert.common_name)
            .field("chaincode", &self.chaincode)
            .finish_non_exhaustive()
    }
}

impl Querier {
    pub(crate) fn new(
        peer: Arc<Peer>,
        identity: SigningIdentity,
        chaincode: String,
        capacity: usize,
    ) -> Self {
        Querier {
            peer,
            identity,
            chaincode,
            capacity,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Evaluates `function(arg)` on this peer, from the cache if the ledger
    /// has not moved since it was answered.
    pub(crate) async fn evaluate(
        self: &Arc<Self>,
        function: &'static str,
        arg: &str,
    ) -> Result<Answer, WebError> {
        let height = self.peer.height();
        let key = (function, arg.to_owned());
        if self.capacity > 0 {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.height == height
                && let Some((at, a)) = cache.entries.get(&key)
                && at.elapsed() < CACHE_TTL
            {
                return Ok(a.clone());
            }
        }
        let me = self.clone();
        let arg2 = key.1.clone();
        // Endorsing runs wasm: CPU-bound, so off the async threads.
        let answer = tokio::task::spawn_blocking(move || me.evaluate_now(function, &arg2))
            .await
            .map_err(|e| WebError::Query(format!("the query task failed: {e}")))??;
        if self.capacity > 0 {
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.height != height || cache.entries.len() >= self.capacity {
                cache.entries.clear();
                cache.height = height;
            }
            cache.entries.insert(key, (Instant::now(), answer.clone()));
        }
        Ok(answer)
    }

    fn evaluate_now(&self, function: &str, arg: &str) -> Result<Answer, WebError> {
        let channel = self.peer.channel();
        let args: [&[u8]; 2] = [function.as_bytes(), arg.as_bytes()];
        let (signed, _tx_id) = build_proposal(&self.identity, channel.id(), &self.chaincode, &args)
            .map_err(|e| WebError::Query(format!("signing the query proposal: {e}")))?;
        let response = self
            .peer
            .endorser
            .endorse(&signed)
            .map_err(|e| WebError::Query(e.to_string()))?;
        let r = response.response.unwrap_or_default();
        if !(200..400).contains(&r.status) {
            return Ok(Answer::Refused(r.message));
        }
        let v: Value = serde_json::from_slice(&r.payload)
            .map_err(|e| WebError::Query(format!("{function} did not answer JSON: {e}")))?;
        Ok(Answer::Json(Arc::new(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_contracts_wording() {
        let refused = |m: &str| Verdict::of(&Answer::Refused(m.into()));
        assert_eq!(
            refused("counterfeit code: the signature is not valid for batch x/y"),
            Verdict::Forged
        );
        assert_eq!(
            refused("serial 30 is beyond batch x/y's quantity 24"),
            Verdict::Invalid
        );
        assert_eq!(
            refused("unknown batch 06901234560022/NOPE"),
            Verdict::Unknown
        );
        assert_eq!(refused("malformed unit code"), Verdict::Malformed);
        let warned = Answer::Json(Arc::new(serde_json::json!({"counterfeit_warning": "x"})));
        assert_eq!(Verdict::of(&warned), Verdict::PossibleCounterfeit);
        let fine = Answer::Json(Arc::new(serde_json::json!({"counterfeit_warning": null})));
        assert_eq!(Verdict::of(&fine), Verdict::Genuine);
    }
}

//! How many orgs keep a file, and which must fetch it. Pure: every org
//! computes the same plan from the same inputs.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{FileId, OrgId};

const RANK_TAG: &[u8] = b"qcss/mdss/replica/v1";

/// Copies required per kind of file (e.g. `"certificate"`, `"video"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replication {
    /// Copies of a kind not listed in `per_kind`.
    pub default_copies: u32,
    /// Copies per kind.
    #[serde(default)]
    pub per_kind: BTreeMap<String, u32>,
}

impl Default for Replication {
    fn default() -> Self {
        Self {
            default_copies: 2,
            per_kind: BTreeMap::new(),
        }
    }
}

/// What [`Replication::plan`] decided.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Orgs that must fetch the file, best first.
    pub fetch: Vec<OrgId>,
    /// Copies still missing after they do (the consortium has too few orgs).
    pub shortfall: u32,
}

impl Replication {
    /// Copies required for `kind` (K).
    pub fn copies(&self, kind: &str) -> u32 {
        self.per_kind
            .get(kind)
            .copied()
            .unwrap_or(self.default_copies)
    }

    /// Which of `members` must fetch `file` so that at least K members hold
    /// it, given the members that hold it now (`holders`; holders that are
    /// no longer members do not count). Candidates are ranked by
    /// SHA-256(tag ‖ file id ‖ org id) (rendezvous hashing), so files spread
    /// evenly over orgs and every org agrees on the plan.
    pub fn plan(
        &self,
        kind: &str,
        file: &FileId,
        members: &[OrgId],
        holders: &BTreeSet<OrgId>,
    ) -> Plan {
        let members: BTreeSet<&OrgId> = members.iter().collect();
        let held = members.iter().filter(|m| holders.contains(**m)).count() as u32;
        let need = self.copies(kind).saturating_sub(held);
        let mut candidates: Vec<(&OrgId, [u8; 32])> = members
            .iter()
            .filter(|m| !holders.contains(**m))
            .map(|m| (*m, rank(file, m)))
            .collect();
        candidates.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(b.0)));
        let fetch: Vec<OrgId> = candidates
            .into_iter()
            .take(need as usize)
            .map(|(m, _)| m.clone())
            .collect();
        Plan {
            shortfall: need - fetch.len() as u32,
            fetch,
        }
    }
}

fn rank(file: &FileId, org: &OrgId) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(RANK_TAG);
    h.update(file.0);
    h.update(org.as_str().as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orgs(names: &[&str]) -> Vec<OrgId> {
        names.iter().map(|n| OrgId::new(n).unwrap()).collect()
    }

    fn policy() -> Replication {
        Replication {
            default_copies: 2,
            per_kind: [("video".to_owned(), 3), ("scratch".to_owned(), 1)]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn plans() {
        let members = orgs(&["A", "B", "C", "D"]);
        let file = FileId([7; 32]);
        let held = |n: &[&str]| orgs(n).into_iter().collect::<BTreeSet<_>>();
        struct Case {
            kind: &'static str,
            holders: &'static [&'static str],
            fetch: usize,
            shortfall: u32,
        }
        let cases = [
            Case {
                kind: "video",
                holders: &["A"],
                fetch: 2,
                shortfall: 0,
            },
            Case {
                kind: "video",
                holders: &["A", "B", "C"],
                fetch: 0,
                shortfall: 0,
            },
            Case {
                kind: "video",
                holders: &["A", "B", "C", "D"],
                fetch: 0,
                shortfall: 0,
            },
            Case {
                kind: "other",
                holders: &["A"],
                fetch: 1,
                shortfall: 0,
            },
            Case {
                kind: "scratch",
                holders: &[],
                fetch: 1,
                shortfall: 0,
            },
            // A holder that left the consortium does not count.
            Case {
                kind: "other",
                holders: &["A", "Gone"],
                fetch: 1,
                shortfall: 0,
            },
            // Nobody holds it: K fetch (from wherever a copy is).
            Case {
                kind: "video",
                holders: &[],
                fetch: 3,
                shortfall: 0,
            },
        ];
        for c in cases {
            let p = policy().plan(c.kind, &file, &members, &held(c.holders));
            assert_eq!(p.fetch.len(), c.fetch, "{} {:?}", c.kind, c.holders);
            assert_eq!(p.shortfall, c.shortfall);
            for f in &p.fetch {
                assert!(!c.holders.contains(&f.as_str()) && members.contains(f));
            }
        }
        // Too few members for K.
        let p = policy().plan("video", &file, &orgs(&["A", "B"]), &held(&["A"]));
        assert_eq!((p.fetch, p.shortfall), (orgs(&["B"]), 1));
    }

    #[test]
    fn plan_is_deterministic_and_spreads() {
        let members = orgs(&["A", "B", "C", "D", "E"]);
        let mut first = BTreeMap::<OrgId, u32>::new();
        for i in 0..200u8 {
            let file = FileId([i; 32]);
            let mut shuffled = members.clone();
            shuffled.reverse();
            let p1 = policy().plan("scratch", &file, &members, &BTreeSet::new());
            let p2 = policy().plan("scratch", &file, &shuffled, &BTreeSet::new());
            assert_eq!(p1, p2);
            *first.entry(p1.fetch[0].clone()).or_default() += 1;
        }
        // Every org is picked first for some files.
        assert_eq!(first.len(), 5, "{first:?}");
    }
}

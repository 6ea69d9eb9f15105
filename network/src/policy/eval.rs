//! Evaluation (see `SignaturePolicy::is_satisfied_by` for the method and its cost).

use std::collections::{HashMap, HashSet};

use super::{NOutOf, PrincipalRole, SignaturePolicy, SignerInfo};
use crate::Role;

/// Identities taken from each contested class, indexed by slot.
type Usage = Vec<u32>;
/// The usages with which a sub-policy can be satisfied; empty = impossible.
type Usages = HashSet<Usage>;

/// What a principal (leaf) can draw on.
enum Leaf {
    /// It accepts a class that cannot run short: satisfied at no cost.
    Free,
    /// It accepts only these contested slots (none: unsatisfiable).
    Contested(Vec<usize>),
}

pub(super) struct Search {
    /// Per principal, in the order `SignaturePolicy::principals` lists them.
    leaves: Vec<Leaf>,
    /// Per contested slot: how many distinct identities the class has.
    available: Vec<u32>,
    /// Per contested slot: first and last index of the principals that accept it.
    span: Vec<(usize, usize)>,
}

impl Search {
    pub(super) fn new(policy: &SignaturePolicy, signers: &[SignerInfo]) -> Self {
        let principals = policy.principals();
        let wanted: HashSet<(&str, PrincipalRole)> =
            principals.iter().map(|p| (p.msp_id(), p.role())).collect();

        // Count distinct relevant identities per (org, role) class.
        let mut seen = HashSet::new();
        let mut class_of: HashMap<(&str, Role), usize> = HashMap::new();
        let mut count: Vec<usize> = Vec::new();
        for signer in signers {
            let msp = signer.msp_id.as_str();
            let relevant = wanted.contains(&(msp, PrincipalRole::Member))
                || wanted.contains(&(msp, PrincipalRole::Exactly(signer.role)));
            // Deduplicate before filtering: the first occurrence of an id wins, later
            // ones are the same certificate.
            if !seen.insert(signer.id) || !relevant {
                continue;
            }
            let next = class_of.len();
            let class = *class_of.entry((msp, signer.role)).or_insert(next);
            match count.get_mut(class) {
                Some(c) => *c += 1,
                None => count.push(1),
            }
        }

        // Which classes each principal accepts, and how many principals accept each.
        let accepts: Vec<Vec<usize>> = principals
            .iter()
            .map(|p| {
                Role::ALL
                    .into_iter()
                    .filter(|&role| p.role().matches(role))
                    .filter_map(|role| class_of.get(&(p.msp_id(), role)).copied())
                    .collect()
            })
            .collect();
        let mut uses = vec![0usize; count.len()];
        let mut span = vec![(usize::MAX, 0usize); count.len()];
        for (leaf, classes) in accepts.iter().enumerate() {
            for &class in classes {
                if let (Some(u), Some(s)) = (uses.get_mut(class), span.get_mut(class)) {
                    *u += 1;
                    *s = (s.0.min(leaf), leaf);
                }
            }
        }

        // A class is contested when more principals accept it than it has identities.
        let mut slot_of = vec![None; count.len()];
        let mut available = Vec::new();
        let mut slot_span = Vec::new();
        for class in 0..count.len() {
            if uses[class] > count[class] {
                slot_of[class] = Some(available.len());
                available.push(u32::try_from(count[class]).unwrap_or(u32::MAX));
                slot_span.push(span[class]);
            }
        }
        let leaves = accepts
            .iter()
            .map(|classes| {
                let mut slots = Vec::with_capacity(classes.len());
                for &class in classes {
                    match slot_of[class] {
                        Some(slot) => slots.push(slot),
                        None => return Leaf::Free,
                    }
                }
                Leaf::Contested(slots)
            })
            .collect();
        Search {
            leaves,
            available,
            span: slot_span,
        }
    }

    pub(super) fn satisfiable(&self, policy: &SignaturePolicy) -> bool {
        let mut next_leaf = 0;
        !self.usages(policy, &mut next_leaf).is_empty()
    }

    fn zero(&self) -> Usage {
        vec![0; self.available.len()]
    }

    /// The usages with which `policy` can be satisfied (some dominated ones pruned),
    /// given that its first principal is leaf `*next_leaf`; advances `next_leaf` past
    /// its principals.
    fn usages(&self, policy: &SignaturePolicy, next_leaf: &mut usize) -> Usages {
        let first = *next_leaf;
        let mut out = match policy {
            SignaturePolicy::SignedBy(_) => {
                let leaf = self.leaves.get(*next_leaf);
                *next_leaf += 1;
                match leaf {
                    Some(Leaf::Free) => Usages::from([self.zero()]),
                    Some(Leaf::Contested(slots)) => slots
                        .iter()
                        .map(|&slot| {
                            let mut usage = self.zero();
                            usage[slot] = 1;
                            usage
                        })
                        .collect(),
                    None => Usages::new(),
                }
            }
            SignaturePolicy::NOutOf(gate) => self.gate(gate, next_leaf),
        };
        // Classes only this sub-policy's principals accept are settled here: nobody
        // outside competes for them, so stop tracking them.
        let closed: Vec<usize> = (0..self.span.len())
            .filter(|&slot| first <= self.span[slot].0 && self.span[slot].1 < *next_leaf)
            .collect();
        if !closed.is_empty() && !out.is_empty() {
            out = out
                .into_iter()
                .map(|mut usage| {
                    for &slot in &closed {
                        usage[slot] = 0;
                    }
                    usage
                })
                .collect();
        }
        // Using nothing beats every alternative.
        let zero = self.zero();
        if out.len() > 1 && out.contains(&zero) {
            out = Usages::from([zero]);
        }
        out
    }

    fn gate(&self, gate: &NOutOf, next_leaf: &mut usize) -> Usages {
        let zero = self.zero();
        let mut free = 0usize;
        let mut costly: Vec<Usages> = Vec::new();
        for rule in &gate.rules {
            let usages = self.usages(rule, next_leaf);
            if usages.contains(&zero) {
                free += 1;
            } else if !usages.is_empty() {
                costly.push(usages);
            }
        }
        // Free children go first; the rest must come from costly ones, and choosing
        // more of those than needed never helps.
        let need = gate.n.saturating_sub(free);
        if need == 0 {
            return Usages::from([zero]);
        }
        if need > costly.len() {
            return Usages::new();
        }
        // chosen[t]: usages of choosing exactly t of the costly children seen so far.
        let mut chosen: Vec<Usages> = vec![Usages::new(); need + 1];
        chosen[0].insert(zero);
        let m = costly.len();
        for (j, child) in costly.iter().enumerate() {
            // Counts below `lo` can no longer reach `need` with the children left.
            let lo = need.saturating_sub(m - j - 1).max(1);
            let hi = need.min(j + 1);
            for t in (lo..=hi).rev() {
                let (below, above) = chosen.split_at_mut(t);
                let (Some(from), Some(to)) = (below.last(), above.first_mut()) else {
                    continue;
                };
                for a in from.iter() {
                    for b in child {
                        if let Some(sum) = self.add(a, b) {
                            to.insert(sum);
                        }
                    }
                }
            }
        }
        chosen.pop().unwrap_or_default()
    }

    /// `a + b`, or `None` if that takes more identities than some class has.
    fn add(&self, a: &Usage, b: &Usage) -> Option<Usage> {
        a.iter()
            .zip(b)
            .zip(&self.available)
            .map(|((&x, &y), &cap)| Some(x + y).filter(|&sum| sum <= cap))
            .collect()
    }
}

//! Endorsement and access policies: parsing Fabric's policy strings and
//! deciding whether a set of signers satisfies them.
//!
//! Two syntaxes, both Fabric's, one type [`Policy`]:
//!
//! * **Signature policies** combine principals with gates:
//!   `AND('Org1MSP.peer', 'Org2MSP.peer')`, `OR('Lab.member', "Regulator.admin")`,
//!   `OutOf(2, 'A.peer', AND('B.peer', 'C.peer'), OR('D.admin', 'E.admin'))`.
//!   A principal is `'<MSP id>.<role>'` in single or double quotes; the role is the
//!   text after the last `.` and is one of `admin`, `peer`, `orderer`, `client` or
//!   `member` (any role of that org). Keywords are ASCII case-insensitive, gates nest
//!   up to [`MAX_NESTING_DEPTH`] deep, and `OutOf(n, …)` needs n between 1 and the
//!   number of sub-policies. Whitespace may appear between any two tokens.
//! * **Implicit-meta policies** ask a rule of the orgs' own sub-policies:
//!   `ANY Writers`, `MAJORITY Admins`, `ALL Admins` (see [`ImplicitMetaPolicy`]).
//!
//! **A signature counts once.** Signers are deduplicated by identity first, and each
//! identity satisfies at most one principal in the whole policy, so
//! `AND('A.member', 'A.member')` needs two distinct identities of `A`. Unlike Fabric's
//! greedy matcher, [`SignaturePolicy::is_satisfied_by`] finds an assignment whenever one
//! exists. Signers of orgs the policy does not name are ignored.
//!
//! Syntax errors name the byte position and what was expected. Input longer than
//! [`MAX_POLICY_LEN`] is refused before parsing. Start at [`Policy::parse`] and
//! [`Policy::evaluate`].

mod eval;
mod parse;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::str::FromStr;

use crate::Role;
use eval::Search;
use parse::{EXPECTED_SIGNATURE, Parser, describe_next, is_name_byte};

/// Longest policy text [`Policy::parse`] accepts, in bytes.
pub const MAX_POLICY_LEN: usize = 64 * 1024;

/// Most gates (`AND`/`OR`/`OutOf`) that may enclose one another. Bounds recursion in
/// parsing, evaluation, `Display` and drop, so hostile input cannot overflow the stack.
pub const MAX_NESTING_DEPTH: usize = 32;

/// Why a policy could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The input is empty or only whitespace.
    #[error("empty policy")]
    Empty,
    /// The input is longer than [`MAX_POLICY_LEN`]; it was not parsed.
    #[error("policy is {len} bytes long, more than the {max} allowed")]
    TooLong {
        /// Length of the input in bytes.
        len: usize,
        /// The limit, [`MAX_POLICY_LEN`].
        max: usize,
    },
    /// The text at byte `position` is not what the grammar allows there.
    #[error("expected {expected} at position {position}, found {found}")]
    Syntax {
        /// Byte offset into the input (0-based).
        position: usize,
        /// What would have been accepted.
        expected: &'static str,
        /// What was there: a quoted character or word, or `end of input`.
        found: String,
    },
    /// A principal's role is not `admin`, `peer`, `orderer`, `client` or `member`.
    #[error("unknown role {role:?}{} (expected admin, peer, orderer, client or member)", at(.position))]
    UnknownRole {
        /// The role text as written.
        role: String,
        /// Byte offset of the role in the input, when parsing.
        position: Option<usize>,
    },
    /// A principal is malformed: no `.role` suffix, or a bad MSP id.
    #[error("invalid principal {principal:?}{}: {reason}", at(.position))]
    InvalidPrincipal {
        /// The principal text as written.
        principal: String,
        /// Byte offset of the problem in the input, when parsing.
        position: Option<usize>,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An implicit-meta sub-policy name is empty or has characters other than ASCII
    /// letters, digits, `-` and `_`.
    #[error("invalid sub-policy name {name:?} (expected ASCII letters, digits, '-' or '_')")]
    InvalidSubPolicyName {
        /// The name as given.
        name: String,
    },
    /// A threshold is 0 or larger than the number of sub-policies (building `AND` or
    /// `OR` of no sub-policies reports n = 0 of 0).
    #[error("OutOf count {n}{} must be between 1 and the number of sub-policies ({count})", at(.position))]
    BadOutOfCount {
        /// The threshold asked for.
        n: usize,
        /// How many sub-policies there are.
        count: usize,
        /// Byte offset of the count in the input, when parsing.
        position: Option<usize>,
    },
    /// An `OutOf` count does not fit in a `usize`.
    #[error("number {text:?} at position {position} is too large")]
    BadNumber {
        /// The digits as written.
        text: String,
        /// Byte offset of the number in the input.
        position: usize,
    },
    /// Gates nest deeper than [`MAX_NESTING_DEPTH`].
    #[error("policy nests gates more than {max} deep{}", at(.position))]
    NestingTooDeep {
        /// The limit, [`MAX_NESTING_DEPTH`].
        max: usize,
        /// Byte offset of the gate that goes too deep, when parsing.
        position: Option<usize>,
    },
}

/// Formats an optional position for error messages.
fn at(position: &Option<usize>) -> String {
    match position {
        Some(p) => format!(" at position {p}"),
        None => String::new(),
    }
}

/// One verified signer, as policy evaluation sees it.
///
/// Built by the caller after checking the signature and certificate; this module
/// trusts every field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignerInfo {
    /// SHA-256 of the signer's certificate: two entries with the same `id` are the same
    /// identity and count once.
    pub id: [u8; 32],
    /// The MSP (org) that issued the certificate.
    pub msp_id: String,
    /// The role from the certificate's OU.
    pub role: Role,
}

impl SignerInfo {
    /// A signer with identity `id` of org `msp_id` in role `role`.
    pub fn new(id: [u8; 32], msp_id: impl Into<String>, role: Role) -> Self {
        SignerInfo {
            id,
            msp_id: msp_id.into(),
            role,
        }
    }
}

/// Which identities of an org a principal accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PrincipalRole {
    /// `member`: any identity of the org, whatever its role.
    Member,
    /// Only identities with exactly this role.
    Exactly(Role),
}

impl PrincipalRole {
    /// The name used in policy strings.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalRole::Member => "member",
            PrincipalRole::Exactly(role) => role.as_str(),
        }
    }

    /// Whether an identity in `role` is accepted.
    pub fn matches(self, role: Role) -> bool {
        match self {
            PrincipalRole::Member => true,
            PrincipalRole::Exactly(wanted) => wanted == role,
        }
    }
}

impl fmt::Display for PrincipalRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PrincipalRole {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "member" {
            return Ok(PrincipalRole::Member);
        }
        s.parse::<Role>()
            .map(PrincipalRole::Exactly)
            .map_err(|_| PolicyError::UnknownRole {
                role: s.to_string(),
                position: None,
            })
    }
}

/// An org and a role, written `Org1MSP.peer`: the leaf of a signature policy.
///
/// The MSP id is non-empty and made of ASCII letters, digits, `.`, `-` and `_` (Fabric
/// allows dots in MSP ids, so the role is the text after the *last* dot).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    msp_id: String,
    role: PrincipalRole,
}

impl Principal {
    /// A principal for `role` in org `msp_id`; fails if the MSP id is empty or has
    /// characters outside `[A-Za-z0-9._-]`.
    pub fn new(msp_id: impl Into<String>, role: PrincipalRole) -> Result<Self, PolicyError> {
        let msp_id = msp_id.into();
        check_msp_id(&msp_id, role, None)?;
        Ok(Principal { msp_id, role })
    }

    /// The org.
    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// The role accepted.
    pub fn role(&self) -> PrincipalRole {
        self.role
    }

    /// Whether `signer` is an identity this principal accepts.
    pub fn matches(&self, signer: &SignerInfo) -> bool {
        signer.msp_id == self.msp_id && self.role.matches(signer.role)
    }

    /// Parses `MSPID.role`; `offset` is where `text` starts in the whole input.
    fn from_text(text: &str, offset: Option<usize>) -> Result<Self, PolicyError> {
        let Some((msp_id, role)) = text.rsplit_once('.') else {
            return Err(PolicyError::InvalidPrincipal {
                principal: text.to_string(),
                position: offset,
                reason: "missing the '.role' suffix (admin, peer, orderer, client or member)",
            });
        };
        let role = role
            .parse::<PrincipalRole>()
            .map_err(|_| PolicyError::UnknownRole {
                role: role.to_string(),
                position: offset.map(|o| o + msp_id.len() + 1),
            })?;
        check_msp_id(msp_id, role, offset)?;
        Ok(Principal {
            msp_id: msp_id.to_string(),
            role,
        })
    }
}

/// Checks an MSP id's characters; `offset` is where it starts in the whole input.
fn check_msp_id(
    msp_id: &str,
    role: PrincipalRole,
    offset: Option<usize>,
) -> Result<(), PolicyError> {
    let invalid = |position, reason| PolicyError::InvalidPrincipal {
        principal: format!("{msp_id}.{role}"),
        position,
        reason,
    };
    if msp_id.is_empty() {
        return Err(invalid(offset, "empty MSP id"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    match msp_id.char_indices().find(|&(_, c)| !allowed(c)) {
        Some((i, _)) => Err(invalid(
            offset.map(|o| o + i),
            "MSP id may contain only ASCII letters, digits, '.', '-' and '_'",
        )),
        None => Ok(()),
    }
}

impl fmt::Display for Principal {
    /// `Org1MSP.peer`, without quotes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.msp_id, self.role)
    }
}

impl FromStr for Principal {
    type Err = PolicyError;
    /// Parses `Org1MSP.peer` (no quotes).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Principal::from_text(s, Some(0))
    }
}

/// A policy over signatures: a tree of threshold gates over principals (Fabric's
/// `SignaturePolicy`). `AND` and `OR` are the thresholds "all" and "one".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SignaturePolicy {
    /// Satisfied by one signer the principal accepts.
    SignedBy(Principal),
    /// Satisfied when `n` of the sub-policies are, by distinct signers.
    NOutOf(NOutOf),
}

/// A threshold gate: `n` of `rules` must be satisfied. Always `1 <= n <= rules.len()`
/// and nested at most [`MAX_NESTING_DEPTH`] deep, so every value is evaluable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NOutOf {
    n: usize,
    rules: Vec<SignaturePolicy>,
    /// Gates in the deepest path through this one (this one included).
    depth: usize,
}

impl NOutOf {
    /// `n` out of `rules`; fails unless `1 <= n <= rules.len()` and the result nests at
    /// most [`MAX_NESTING_DEPTH`] gates deep.
    pub fn new(n: usize, rules: Vec<SignaturePolicy>) -> Result<Self, PolicyError> {
        Self::build(n, rules, None)
    }

    fn build(
        n: usize,
        rules: Vec<SignaturePolicy>,
        position: Option<usize>,
    ) -> Result<Self, PolicyError> {
        if n == 0 || n > rules.len() {
            return Err(PolicyError::BadOutOfCount {
                n,
                count: rules.len(),
                position,
            });
        }
        let depth = 1 + rules.iter().map(SignaturePolicy::depth).max().unwrap_or(0);
        if depth > MAX_NESTING_DEPTH {
            return Err(PolicyError::NestingTooDeep {
                max: MAX_NESTING_DEPTH,
                position,
            });
        }
        Ok(NOutOf { n, rules, depth })
    }

    /// The threshold.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The sub-policies.
    pub fn rules(&self) -> &[SignaturePolicy] {
        &self.rules
    }
}

impl SignaturePolicy {
    /// Parses a signature policy such as `OR('Org1MSP.peer', 'Org2MSP.peer')`.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let mut parser = Parser::new(text)?;
        let policy = parser.node(0, EXPECTED_SIGNATURE)?;
        parser.finish()?;
        Ok(policy)
    }

    /// A policy satisfied by one signer `principal` accepts.
    pub fn signed_by(principal: Principal) -> Self {
        SignaturePolicy::SignedBy(principal)
    }

    /// `OutOf(n, rules…)`; see [`NOutOf::new`].
    pub fn n_out_of(n: usize, rules: Vec<SignaturePolicy>) -> Result<Self, PolicyError> {
        NOutOf::new(n, rules).map(SignaturePolicy::NOutOf)
    }

    /// `AND(rules…)`: all of them; `rules` must not be empty.
    pub fn and(rules: Vec<SignaturePolicy>) -> Result<Self, PolicyError> {
        Self::n_out_of(rules.len(), rules)
    }

    /// `OR(rules…)`: any of them; `rules` must not be empty.
    pub fn or(rules: Vec<SignaturePolicy>) -> Result<Self, PolicyError> {
        Self::n_out_of(1, rules)
    }

    /// How many gates nest on the deepest path (0 for a bare principal).
    pub fn depth(&self) -> usize {
        match self {
            SignaturePolicy::SignedBy(_) => 0,
            SignaturePolicy::NOutOf(gate) => gate.depth,
        }
    }

    /// Every principal, in the order written (repeats included).
    pub fn principals(&self) -> Vec<&Principal> {
        let mut out = Vec::new();
        self.collect_principals(&mut out);
        out
    }

    fn collect_principals<'a>(&'a self, out: &mut Vec<&'a Principal>) {
        match self {
            SignaturePolicy::SignedBy(p) => out.push(p),
            SignaturePolicy::NOutOf(gate) => {
                for rule in &gate.rules {
                    rule.collect_principals(out);
                }
            }
        }
    }

    /// The orgs the policy names, sorted and without repeats: the only orgs whose
    /// signatures can matter (the Gateway picks endorsers among them).
    pub fn msp_ids(&self) -> Vec<&str> {
        let ids: BTreeSet<&str> = self
            .principals()
            .into_iter()
            .map(Principal::msp_id)
            .collect();
        ids.into_iter().collect()
    }

    /// Whether `signers` satisfy the policy, each distinct identity (`id`) standing for
    /// at most one principal. Signers no principal accepts are ignored.
    ///
    /// Exact, unlike Fabric's greedy matcher: identities of the same org and role are
    /// interchangeable, so the search counts them per (org, role) class. A class with at
    /// least as many identities as principals that accept it cannot run short and costs
    /// nothing; only the other, *contested* classes are tracked. Each sub-policy yields
    /// the set of vectors "identities taken from each contested class" with which it can
    /// be satisfied; a gate combines its children's sets like a knapsack over "how many
    /// children chosen", discarding vectors that exceed the available counts, and a class
    /// no principal outside a sub-policy accepts is dropped from the vectors there.
    ///
    /// Cost: linear in policy size plus signers when no class is contested (the usual
    /// case: one principal per org and role, or enough signers). Otherwise each set holds
    /// at most the product over contested classes of (identities + 1), at most
    /// 2^(contested identities), e.g. 2^20 for 20 signers; a gate with k children and
    /// threshold n does O(k · n · |set|²) vector additions. The problem is NP-complete in
    /// general (set packing reduces to it), so no exact method avoids exponential cases.
    pub fn is_satisfied_by(&self, signers: &[SignerInfo]) -> bool {
        Search::new(self, signers).satisfiable(self)
    }
}

impl fmt::Display for SignaturePolicy {
    /// The canonical form: single quotes, `AND` when `n` is the number of rules, else
    /// `OR` when `n` is 1, else `OutOf(n, …)`; `", "` between arguments.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignaturePolicy::SignedBy(p) => write!(f, "'{p}'"),
            SignaturePolicy::NOutOf(gate) => {
                if gate.n == gate.rules.len() {
                    f.write_str("AND(")?;
                } else if gate.n == 1 {
                    f.write_str("OR(")?;
                } else {
                    write!(f, "OutOf({}, ", gate.n)?;
                }
                for (i, rule) in gate.rules.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{rule}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl FromStr for SignaturePolicy {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SignaturePolicy::parse(s)
    }
}

/// How many orgs an implicit-meta policy needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImplicitMetaRule {
    /// At least one org.
    Any,
    /// Every org.
    All,
    /// More than half the orgs (3 of 4, 2 of 3, 2 of 2, 1 of 1).
    Majority,
}

impl ImplicitMetaRule {
    /// The keyword: `ANY`, `ALL` or `MAJORITY`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImplicitMetaRule::Any => "ANY",
            ImplicitMetaRule::All => "ALL",
            ImplicitMetaRule::Majority => "MAJORITY",
        }
    }

    /// How many of `orgs` orgs must be satisfied. Never less than 1: an empty org set
    /// satisfies nothing (Fabric treats it as satisfied; we fail closed).
    pub fn threshold(self, orgs: usize) -> usize {
        let n = match self {
            ImplicitMetaRule::Any => 1,
            ImplicitMetaRule::All => orgs,
            ImplicitMetaRule::Majority => orgs / 2 + 1,
        };
        n.max(1)
    }

    fn from_keyword(word: &str) -> Option<Self> {
        [
            ImplicitMetaRule::Any,
            ImplicitMetaRule::All,
            ImplicitMetaRule::Majority,
        ]
        .into_iter()
        .find(|rule| word.eq_ignore_ascii_case(rule.as_str()))
    }
}

impl fmt::Display for ImplicitMetaRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `ANY Writers`, `MAJORITY Admins`, `ALL Admins`: the rule applied to each org's own
/// policy named `sub_policy` (Fabric's `ImplicitMetaPolicy`, with orgs as the groups).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImplicitMetaPolicy {
    rule: ImplicitMetaRule,
    sub_policy: String,
}

impl ImplicitMetaPolicy {
    /// `rule` over each org's `sub_policy`; the name must be non-empty ASCII letters,
    /// digits, `-` and `_`.
    pub fn new(rule: ImplicitMetaRule, sub_policy: impl Into<String>) -> Result<Self, PolicyError> {
        let sub_policy = sub_policy.into();
        if sub_policy.is_empty() || !sub_policy.bytes().all(is_name_byte) {
            return Err(PolicyError::InvalidSubPolicyName { name: sub_policy });
        }
        Ok(ImplicitMetaPolicy { rule, sub_policy })
    }

    /// The rule.
    pub fn rule(&self) -> ImplicitMetaRule {
        self.rule
    }

    /// The name of the orgs' policy it refers to, e.g. `Admins`.
    pub fn sub_policy(&self) -> &str {
        &self.sub_policy
    }

    /// Whether at least [`ImplicitMetaRule::threshold`] of `orgs` (repeats counted once)
    /// have their sub-policy satisfied by `signers`. Each org's policy is evaluated on
    /// its own, over all signers. An org the resolver does not know, or that has no
    /// policy of that name, counts as not satisfied; an empty `orgs` never satisfies.
    pub fn evaluate<S, R>(&self, signers: &[SignerInfo], orgs: &[S], resolver: &R) -> bool
    where
        S: AsRef<str>,
        R: PolicyResolver + ?Sized,
    {
        let orgs: BTreeSet<&str> = orgs.iter().map(AsRef::as_ref).collect();
        let needed = self.rule.threshold(orgs.len());
        let mut satisfied = 0;
        for (checked, org) in orgs.iter().enumerate() {
            // Stop as soon as the answer is known either way.
            if satisfied + (orgs.len() - checked) < needed {
                return false;
            }
            let ok = resolver
                .resolve(org, &self.sub_policy)
                .is_some_and(|policy| policy.is_satisfied_by(signers));
            if ok {
                satisfied += 1;
                if satisfied >= needed {
                    return true;
                }
            }
        }
        false
    }
}

impl fmt::Display for ImplicitMetaPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.rule, self.sub_policy)
    }
}

impl FromStr for ImplicitMetaPolicy {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match Policy::parse(s)? {
            Policy::ImplicitMeta(policy) => Ok(policy),
            Policy::Signature(_) => {
                let rest = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
                Err(PolicyError::Syntax {
                    position: s.len() - rest.len(),
                    expected: "'ANY', 'ALL' or 'MAJORITY'",
                    found: describe_next(rest),
                })
            }
        }
    }
}

/// Where an implicit-meta policy finds each org's named policies (the channel
/// configuration, typically).
///
/// Org-level policies are signature policies: that is where the hierarchy ends, and it
/// rules out cycles such as an org whose `Admins` is `MAJORITY Admins`.
pub trait PolicyResolver {
    /// Org `msp_id`'s policy called `name`, or `None` if the org or the policy is unknown.
    fn resolve(&self, msp_id: &str, name: &str) -> Option<&SignaturePolicy>;
}

impl<R: PolicyResolver + ?Sized> PolicyResolver for &R {
    fn resolve(&self, msp_id: &str, name: &str) -> Option<&SignaturePolicy> {
        (**self).resolve(msp_id, name)
    }
}

/// Org → policy name → policy.
impl<S1: BuildHasher, S2: BuildHasher> PolicyResolver
    for HashMap<String, HashMap<String, SignaturePolicy, S2>, S1>
{
    fn resolve(&self, msp_id: &str, name: &str) -> Option<&SignaturePolicy> {
        self.get(msp_id)?.get(name)
    }
}

/// Org → policy name → policy.
impl PolicyResolver for BTreeMap<String, BTreeMap<String, SignaturePolicy>> {
    fn resolve(&self, msp_id: &str, name: &str) -> Option<&SignaturePolicy> {
        self.get(msp_id)?.get(name)
    }
}

/// A parsed policy of either syntax.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Policy {
    /// `AND(…)`, `OR(…)`, `OutOf(…)` or a quoted principal.
    Signature(SignaturePolicy),
    /// `ANY …`, `ALL …` or `MAJORITY …`.
    ImplicitMeta(ImplicitMetaPolicy),
}

impl Policy {
    /// Parses either syntax, telling them apart by the first word.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let mut parser = Parser::new(text)?;
        let policy = parser.policy()?;
        parser.finish()?;
        Ok(policy)
    }

    /// Whether `signers` satisfy the policy. `orgs` and `resolver` serve implicit-meta
    /// policies only (see [`ImplicitMetaPolicy::evaluate`]); a signature policy ignores
    /// them (see [`SignaturePolicy::is_satisfied_by`]).
    pub fn evaluate<S, R>(&self, signers: &[SignerInfo], orgs: &[S], resolver: &R) -> bool
    where
        S: AsRef<str>,
        R: PolicyResolver + ?Sized,
    {
        match self {
            Policy::Signature(policy) => policy.is_satisfied_by(signers),
            Policy::ImplicitMeta(policy) => policy.evaluate(signers, orgs, resolver),
        }
    }
}

impl fmt::Display for Policy {
    /// The canonical form, which parses back to an equal policy.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Signature(policy) => policy.fmt(f),
            Policy::ImplicitMeta(policy) => policy.fmt(f),
        }
    }
}

impl FromStr for Policy {
    type Err = PolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Policy::parse(s)
    }
}

impl From<SignaturePolicy> for Policy {
    fn from(policy: SignaturePolicy) -> Self {
        Policy::Signature(policy)
    }
}

impl From<ImplicitMetaPolicy> for Policy {
    fn from(policy: ImplicitMetaPolicy) -> Self {
        Policy::ImplicitMeta(policy)
    }
}

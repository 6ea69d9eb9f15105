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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::hash::BuildHasher;
use std::str::FromStr;

use crate::Role;

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

// ---------------------------------------------------------------------------
// Parsing: a hand-written recursive descent over bytes. Every token is ASCII, so
// positions are byte offsets and always fall on character boundaries.

const EXPECTED_SIGNATURE: &str = "'AND', 'OR', 'OutOf' or a quoted principal";
const EXPECTED_POLICY: &str =
    "'AND', 'OR', 'OutOf', a quoted principal, or 'ANY', 'ALL', 'MAJORITY'";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Gate {
    And,
    Or,
    OutOf,
}

impl Gate {
    fn from_keyword(word: &str) -> Option<Self> {
        [("AND", Gate::And), ("OR", Gate::Or), ("OUTOF", Gate::OutOf)]
            .into_iter()
            .find(|(keyword, _)| word.eq_ignore_ascii_case(keyword))
            .map(|(_, gate)| gate)
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// `'c'` for the first character of `rest`, or `end of input`.
fn describe_next(rest: &str) -> String {
    match rest.chars().next() {
        Some(c) => format!("{c:?}"),
        None => "end of input".to_string(),
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Result<Self, PolicyError> {
        if src.len() > MAX_POLICY_LEN {
            return Err(PolicyError::TooLong {
                len: src.len(),
                max: MAX_POLICY_LEN,
            });
        }
        if src.trim().is_empty() {
            return Err(PolicyError::Empty);
        }
        Ok(Parser { src, pos: 0 })
    }

    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// Takes the longest run of bytes matching `accept` (all ASCII).
    fn take_while(&mut self, accept: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&accept) {
            self.pos += 1;
        }
        self.src.get(start..self.pos).unwrap_or_default()
    }

    fn error(&self, expected: &'static str) -> PolicyError {
        PolicyError::Syntax {
            position: self.pos,
            expected,
            found: describe_next(self.src.get(self.pos..).unwrap_or_default()),
        }
    }

    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), PolicyError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    /// Only whitespace may follow the policy.
    fn finish(&mut self) -> Result<(), PolicyError> {
        self.skip_ws();
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("end of input")),
        }
    }

    /// Either syntax: an implicit-meta rule keyword, or a signature policy.
    fn policy(&mut self) -> Result<Policy, PolicyError> {
        self.skip_ws();
        let start = self.pos;
        let word = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_');
        if let Some(rule) = ImplicitMetaRule::from_keyword(word) {
            return self.implicit_meta(rule).map(Policy::ImplicitMeta);
        }
        self.pos = start;
        self.node(0, EXPECTED_POLICY).map(Policy::Signature)
    }

    /// The rest of `ANY Writers` after the rule keyword.
    fn implicit_meta(&mut self, rule: ImplicitMetaRule) -> Result<ImplicitMetaPolicy, PolicyError> {
        let before = self.pos;
        self.skip_ws();
        if self.pos == before && self.peek().is_some() {
            return Err(self.error("whitespace and a sub-policy name"));
        }
        let name = self.take_while(is_name_byte);
        if name.is_empty() {
            return Err(self.error("a sub-policy name (ASCII letters, digits, '-', '_')"));
        }
        ImplicitMetaPolicy::new(rule, name)
    }

    /// A signature policy enclosed by `depth` gates; `expected` describes it in errors.
    fn node(
        &mut self,
        depth: usize,
        expected: &'static str,
    ) -> Result<SignaturePolicy, PolicyError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some(quote @ (b'\'' | b'"')) => self.principal(quote).map(SignaturePolicy::SignedBy),
            Some(b) if b.is_ascii_alphabetic() => {
                let word = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_');
                match Gate::from_keyword(word) {
                    Some(gate) => self.gate(gate, start, depth),
                    None => Err(PolicyError::Syntax {
                        position: start,
                        expected,
                        found: format!("'{word}'"),
                    }),
                }
            }
            _ => Err(self.error(expected)),
        }
    }

    /// The rest of a gate after its keyword, which starts at `start`.
    fn gate(
        &mut self,
        gate: Gate,
        start: usize,
        depth: usize,
    ) -> Result<SignaturePolicy, PolicyError> {
        // Refuse before descending, so the parser's own recursion stays bounded.
        if depth >= MAX_NESTING_DEPTH {
            return Err(PolicyError::NestingTooDeep {
                max: MAX_NESTING_DEPTH,
                position: Some(start),
            });
        }
        self.skip_ws();
        self.expect(b'(', "'('")?;
        let threshold = if gate == Gate::OutOf {
            self.skip_ws();
            let count = self.number()?;
            self.skip_ws();
            self.expect(b',', "','")?;
            Some(count)
        } else {
            None
        };
        let mut rules = Vec::new();
        loop {
            rules.push(self.node(depth + 1, EXPECTED_SIGNATURE)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b')') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("',' or ')'")),
            }
        }
        let (n, position) = match (gate, threshold) {
            (Gate::OutOf, Some(count)) => count,
            (Gate::Or, _) => (1, start),
            _ => (rules.len(), start),
        };
        NOutOf::build(n, rules, Some(position)).map(SignaturePolicy::NOutOf)
    }

    /// A decimal count and its position.
    fn number(&mut self) -> Result<(usize, usize), PolicyError> {
        let start = self.pos;
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(self.error("a number"));
        }
        // Only digits were taken, so the parse can fail only by overflow.
        let n = digits.parse().map_err(|_| PolicyError::BadNumber {
            text: digits.to_string(),
            position: start,
        })?;
        Ok((n, start))
    }

    /// A principal in `quote`s; the opening quote is next.
    fn principal(&mut self, quote: u8) -> Result<Principal, PolicyError> {
        self.pos += 1;
        let start = self.pos;
        let rest = self.src.as_bytes().get(start..).unwrap_or_default();
        let Some(len) = rest.iter().position(|&b| b == quote) else {
            self.pos = self.src.len();
            return Err(self.error("a closing quote"));
        };
        // Quote bytes never occur inside a multi-byte UTF-8 sequence, so this slice is
        // on character boundaries.
        let text = self.src.get(start..start + len).unwrap_or_default();
        self.pos = start + len + 1;
        Principal::from_text(text, Some(start))
    }
}

// ---------------------------------------------------------------------------
// Evaluation (see `SignaturePolicy::is_satisfied_by` for the method and its cost).

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

struct Search {
    /// Per principal, in the order `SignaturePolicy::principals` lists them.
    leaves: Vec<Leaf>,
    /// Per contested slot: how many distinct identities the class has.
    available: Vec<u32>,
    /// Per contested slot: first and last index of the principals that accept it.
    span: Vec<(usize, usize)>,
}

impl Search {
    fn new(policy: &SignaturePolicy, signers: &[SignerInfo]) -> Self {
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

    fn satisfiable(&self, policy: &SignaturePolicy) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `"A.peer#1 B.client#2"`: org, role and identity seed of each signer.
    fn signers(spec: &str) -> Vec<SignerInfo> {
        spec.split_whitespace()
            .map(|s| {
                let (who, seed) = s.split_once('#').expect("signer needs #seed");
                let (msp, role) = who.rsplit_once('.').expect("signer needs .role");
                SignerInfo::new(
                    [seed.parse::<u8>().expect("seed is a u8"); 32],
                    msp,
                    role.parse().expect("known role"),
                )
            })
            .collect()
    }

    fn sig(text: &str) -> SignaturePolicy {
        SignaturePolicy::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn assert_round_trip(text: &str) {
        let policy = Policy::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let canonical = policy.to_string();
        let again = Policy::parse(&canonical).unwrap_or_else(|e| panic!("{canonical}: {e}"));
        assert_eq!(again, policy, "{text} -> {canonical}");
        assert_eq!(again.to_string(), canonical, "canonical form is stable");
    }

    const NESTED: &str = "OutOf(2, 'A.peer', AND('B.peer','C.peer'), OR('D.admin','E.admin'))";
    const PACKING: &str = "AND(OR(AND('A.peer','B.peer'), AND('C.peer','D.peer')), \
                           OR(AND('A.peer','C.peer'), AND('B.peer','D.peer')))";
    const PACKABLE: &str = "AND(OR(AND('A.peer','B.peer'), AND('C.peer','D.peer')), \
                            OR(AND('A.peer','C.peer'), AND('A.peer','B.peer')))";

    #[test]
    fn satisfaction_table() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, bool)] = &[
            // Plain gates.
            ("'A.peer'", "A.peer#1", true),
            ("'A.peer'", "", false),
            ("AND('A.peer', 'B.peer')", "A.peer#1 B.peer#2", true),
            ("AND('A.peer', 'B.peer')", "A.peer#1", false),
            ("OR('A.peer', 'B.peer')", "B.peer#2", true),
            ("OR('A.peer', 'B.peer')", "C.peer#3", false),
            ("OutOf(2, 'A.peer', 'B.peer', 'C.peer')", "A.peer#1 C.peer#3", true),
            ("OutOf(2, 'A.peer', 'B.peer', 'C.peer')", "C.peer#3", false),
            ("AND('A.peer')", "A.peer#1", true),
            // Keywords in any case, both quote styles.
            ("and(\"A.peer\", 'B.peer')", "A.peer#1 B.peer#2", true),
            ("outof(1, 'A.peer', 'B.peer')", "B.peer#2", true),
            ("OUTOF(2, 'A.peer', 'B.peer')", "B.peer#2", false),
            ("Or ( 'A.peer' , 'B.peer' )", "A.peer#1", true),
            // A signature counts once.
            ("AND('A.member', 'A.member')", "A.peer#1 A.peer#1", false),
            ("AND('A.member', 'A.member')", "A.peer#1 A.client#2", true),
            ("AND('A.peer', 'A.peer', 'A.peer')", "A.peer#1 A.peer#2 A.peer#2", false),
            ("AND('A.peer', 'A.peer', 'A.peer')", "A.peer#1 A.peer#2 A.peer#3", true),
            ("OutOf(2, 'A.peer', 'A.peer', 'B.peer')", "A.peer#1", false),
            ("OutOf(2, 'A.peer', 'A.peer', 'B.peer')", "A.peer#1 A.peer#2", true),
            ("AND('A.peer', OR('A.peer', 'A.admin'))", "A.peer#1 A.peer#1", false),
            // member vs a specific role.
            ("'A.peer'", "A.client#1", false),
            ("'A.member'", "A.client#1", true),
            ("'A.member'", "A.orderer#1", true),
            ("'A.admin'", "A.admin#1", true),
            ("'A.admin'", "A.peer#1", false),
            ("'A.orderer'", "A.orderer#1", true),
            ("'A.member'", "B.peer#1", false),
            // Signers of unknown orgs are ignored.
            ("AND('A.peer')", "Z.peer#9 A.peer#1", true),
            ("AND('A.peer')", "Z.peer#9 Z.admin#8", false),
            ("AND('A.member', 'A.member')", "A.peer#1 Z.peer#9", false),
            // Nested OutOf.
            (NESTED, "A.peer#1 B.peer#2 C.peer#3", true),
            (NESTED, "A.peer#1 E.admin#5", true),
            (NESTED, "B.peer#2 C.peer#3 D.admin#4", true),
            (NESTED, "A.peer#1 B.peer#2", false),
            (NESTED, "D.admin#4 E.admin#5", false),
            (NESTED, "A.peer#1 D.peer#4", false),
            // Greedy gives peer#1 to 'A.member' first and then fails 'A.peer'.
            ("AND('A.member', 'A.peer')", "A.peer#1 A.client#2", true),
            ("AND('A.member', 'A.peer')", "A.peer#1", false),
            ("OutOf(2, OR('A.peer', 'B.peer'), 'A.peer')", "A.peer#1 B.peer#2", true),
            ("AND(OR('A.peer','B.peer'), OR('A.peer','C.peer'), OR('B.peer','C.peer'))", "A.peer#1 B.peer#2 C.peer#3", true),
            ("AND(OR('A.peer','B.peer'), OR('A.peer','C.peer'), OR('B.peer','C.peer'))", "A.peer#1 B.peer#2", false),
            ("AND(OR('A.member','B.peer'), 'A.peer', 'A.client')", "A.peer#1 A.client#2 B.peer#3", true),
            ("AND(OR('A.member','B.peer'), 'A.peer', 'A.client')", "A.peer#1 A.client#2", false),
            // Both halves want a conflicting pair.
            (PACKING, "A.peer#1 B.peer#2 C.peer#3 D.peer#4", false),
            (PACKABLE, "A.peer#1 B.peer#2 C.peer#3 D.peer#4", true),
            // Dotted MSP ids: the role follows the last dot.
            ("'org1.example.com.peer'", "org1.example.com.peer#1", true),
        ];
        for &(text, who, expected) in cases {
            let policy = sig(text);
            let signers = signers(who);
            assert_eq!(
                policy.is_satisfied_by(&signers),
                expected,
                "{text} with [{who}]"
            );
            let no_orgs: &[&str] = &[];
            let no_policies: BTreeMap<String, BTreeMap<String, SignaturePolicy>> = BTreeMap::new();
            let as_policy = Policy::Signature(policy);
            assert_eq!(
                as_policy.evaluate(&signers, no_orgs, &no_policies),
                expected
            );
            assert_round_trip(text);
        }
    }

    /// Every injective assignment of signers to principals, tried exhaustively.
    fn brute_force(policy: &SignaturePolicy, signers: &[SignerInfo]) -> bool {
        let mut unique: Vec<&SignerInfo> = Vec::new();
        for s in signers {
            if !unique.iter().any(|u| u.id == s.id) {
                unique.push(s);
            }
        }
        let principals = policy.principals();
        fn holds(p: &SignaturePolicy, chosen: &[bool], next: &mut usize) -> bool {
            match p {
                SignaturePolicy::SignedBy(_) => {
                    *next += 1;
                    chosen[*next - 1]
                }
                SignaturePolicy::NOutOf(g) => {
                    let hits = g.rules.iter().filter(|r| holds(r, chosen, next)).count();
                    hits >= g.n
                }
            }
        }
        fn assign(
            i: usize,
            principals: &[&Principal],
            signers: &[&SignerInfo],
            used: &mut Vec<bool>,
            chosen: &mut Vec<bool>,
            policy: &SignaturePolicy,
        ) -> bool {
            if i == principals.len() {
                return holds(policy, chosen, &mut 0);
            }
            chosen.push(false);
            if assign(i + 1, principals, signers, used, chosen, policy) {
                return true;
            }
            chosen.pop();
            for (k, s) in signers.iter().enumerate() {
                if !used[k] && principals[i].matches(s) {
                    used[k] = true;
                    chosen.push(true);
                    let ok = assign(i + 1, principals, signers, used, chosen, policy);
                    chosen.pop();
                    used[k] = false;
                    if ok {
                        return true;
                    }
                }
            }
            false
        }
        let mut used = vec![false; unique.len()];
        assign(0, &principals, &unique, &mut used, &mut Vec::new(), policy)
    }

    #[test]
    fn agrees_with_brute_force_on_random_policies() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        fn random_policy(next: &mut impl FnMut(usize) -> usize, depth: usize) -> String {
            let orgs = ["A", "B", "C"];
            let roles = ["peer", "client", "member"];
            if depth == 0 || next(3) == 0 {
                return format!("'{}.{}'", orgs[next(3)], roles[next(3)]);
            }
            let k = 1 + next(3);
            let rules: Vec<String> = (0..k).map(|_| random_policy(next, depth - 1)).collect();
            format!("OutOf({}, {})", 1 + next(k), rules.join(", "))
        }
        let mut satisfied = 0;
        for _ in 0..3000 {
            let text = random_policy(&mut next, 3);
            let policy = sig(&text);
            let n = next(6);
            let spec: Vec<String> = (0..n)
                .map(|_| {
                    let role = ["peer", "client"][next(2)];
                    format!("{}.{}#{}", ["A", "B", "C"][next(3)], role, 1 + next(5))
                })
                .collect();
            // A seed reused with another org or role is a duplicate id: both sides keep
            // its first occurrence.
            let signers = signers(&spec.join(" "));
            let expected = brute_force(&policy, &signers);
            satisfied += usize::from(expected);
            assert_eq!(
                policy.is_satisfied_by(&signers),
                expected,
                "{text} with {spec:?}"
            );
        }
        assert!(
            satisfied > 300,
            "the sample exercises both outcomes: {satisfied}"
        );
    }

    fn org_policies(orgs: &[&str]) -> HashMap<String, HashMap<String, SignaturePolicy>> {
        orgs.iter()
            .map(|org| {
                let admins = sig(&format!("'{org}.admin'"));
                let writers = sig(&format!("'{org}.member'"));
                let policies = HashMap::from([
                    ("Admins".to_string(), admins),
                    ("Writers".to_string(), writers),
                ]);
                (org.to_string(), policies)
            })
            .collect()
    }

    #[test]
    fn implicit_meta_thresholds() {
        let all = ["O1", "O2", "O3", "O4"];
        let resolver = org_policies(&all);
        // (rule, orgs in the channel, orgs whose admin signed, expected)
        let mut cases = Vec::new();
        for orgs in 1..=4 {
            for signed in 0..=orgs {
                for (rule, needed) in [("ANY", 1), ("ALL", orgs), ("MAJORITY", orgs / 2 + 1)] {
                    cases.push((rule, orgs, signed, signed >= needed));
                }
            }
        }
        // Spot-check the table against Fabric's numbers.
        assert!(cases.contains(&("MAJORITY", 4, 2, false)));
        assert!(cases.contains(&("MAJORITY", 4, 3, true)));
        assert!(cases.contains(&("MAJORITY", 2, 1, false)));
        assert!(cases.contains(&("MAJORITY", 2, 2, true)));
        assert!(cases.contains(&("MAJORITY", 3, 2, true)));
        assert!(cases.contains(&("MAJORITY", 1, 1, true)));
        for (rule, orgs, signed, expected) in cases {
            let text = format!("{rule} Admins");
            let policy = Policy::parse(&text).expect("parses");
            let spec: Vec<String> = (0..signed)
                .map(|i| format!("{}.admin#{}", all[i], i + 1))
                .collect();
            let ok = policy.evaluate(&signers(&spec.join(" ")), &all[..orgs], &resolver);
            assert_eq!(ok, expected, "{text} over {orgs} orgs with {signed} signed");
            assert_round_trip(&text);
        }
    }

    #[test]
    fn implicit_meta_edge_cases() {
        let resolver = org_policies(&["O1", "O2"]);
        let both = signers("O1.admin#1 O2.admin#2 O3.admin#3");
        #[rustfmt::skip]
        let cases: &[(&str, &[&str], &str, bool)] = &[
            // An org the resolver does not know is not satisfied.
            ("ALL Admins", &["O1", "O2", "O3"], "O1.admin#1 O2.admin#2 O3.admin#3", false),
            ("MAJORITY Admins", &["O1", "O2", "O3"], "O1.admin#1 O2.admin#2 O3.admin#3", true),
            // Nor is an unknown sub-policy.
            ("ANY Readers", &["O1", "O2"], "O1.admin#1 O2.admin#2", false),
            // No orgs: fail closed.
            ("ANY Admins", &[], "O1.admin#1", false),
            ("ALL Admins", &[], "O1.admin#1", false),
            // Repeated orgs count once.
            ("MAJORITY Admins", &["O1", "O1", "O1", "O2"], "O1.admin#1", false),
            // Sub-policies see every signer, and each identity once per org.
            ("ALL Writers", &["O1", "O2"], "O1.peer#1 O2.client#2", true),
            ("all writers", &["O1", "O2"], "O1.peer#1", false),
        ];
        for &(text, orgs, who, expected) in cases {
            let policy = Policy::parse(text).expect("parses");
            assert_eq!(
                policy.evaluate(&signers(who), orgs, &resolver),
                expected,
                "{text} {orgs:?}"
            );
            assert_round_trip(text);
        }
        let by_ref: &dyn PolicyResolver = &resolver;
        let policy: ImplicitMetaPolicy = "ALL Admins".parse().expect("parses");
        assert!(policy.evaluate(&both, &["O1".to_string(), "O2".to_string()], by_ref));
        let tree: BTreeMap<String, BTreeMap<String, SignaturePolicy>> = BTreeMap::from([(
            "O1".into(),
            BTreeMap::from([("Admins".into(), sig("'O1.admin'"))]),
        )]);
        assert!(policy.evaluate(&both, &["O1"], &tree));
    }

    #[test]
    fn syntax_errors_name_position_and_expectation() {
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("AND('A.peer' x)", "expected ',' or ')' at position 13, found 'x'"),
            ("AND('A.peer'", "expected ',' or ')' at position 12, found end of input"),
            ("AND('A.peer'))", "expected end of input at position 13, found ')'"),
            ("'A.peer' 'B.peer'", "expected end of input at position 9, found '\\''"),
            ("AND('A.peer',)", "expected 'AND', 'OR', 'OutOf' or a quoted principal at position 13, found ')'"),
            ("AND()", "expected 'AND', 'OR', 'OutOf' or a quoted principal at position 4, found ')'"),
            ("AND 'A.peer'", "expected '(' at position 4, found '\\''"),
            ("NAND('A.peer')", "expected 'AND', 'OR', 'OutOf', a quoted principal, or 'ANY', 'ALL', 'MAJORITY' at position 0, found 'NAND'"),
            ("A.peer", "expected 'AND', 'OR', 'OutOf', a quoted principal, or 'ANY', 'ALL', 'MAJORITY' at position 0, found 'A'"),
            ("(", "expected 'AND', 'OR', 'OutOf', a quoted principal, or 'ANY', 'ALL', 'MAJORITY' at position 0, found '('"),
            ("OR('A.peer', XOR('B.peer'))", "expected 'AND', 'OR', 'OutOf' or a quoted principal at position 13, found 'XOR'"),
            ("OutOf(x, 'A.peer')", "expected a number at position 6, found 'x'"),
            ("OutOf(-1, 'A.peer')", "expected a number at position 6, found '-'"),
            ("OutOf(1 'A.peer')", "expected ',' at position 8, found '\\''"),
            ("OutOf(0, 'A.peer')", "OutOf count 0 at position 6 must be between 1 and the number of sub-policies (1)"),
            ("OutOf(3, 'A.peer', 'B.peer')", "OutOf count 3 at position 6 must be between 1 and the number of sub-policies (2)"),
            ("OutOf(99999999999999999999999, 'A.peer')", "number \"99999999999999999999999\" at position 6 is too large"),
            ("'A.peer", "expected a closing quote at position 7, found end of input"),
            ("OR('A.peer\")", "expected a closing quote at position 12, found end of input"),
            ("'A.boss'", "unknown role \"boss\" at position 3 (expected admin, peer, orderer, client or member)"),
            ("'A.Peer'", "unknown role \"Peer\" at position 3 (expected admin, peer, orderer, client or member)"),
            ("'A'", "invalid principal \"A\" at position 1: missing the '.role' suffix (admin, peer, orderer, client or member)"),
            ("'.peer'", "invalid principal \".peer\" at position 1: empty MSP id"),
            ("AND('A B.peer')", "invalid principal \"A B.peer\" at position 6: MSP id may contain only ASCII letters, digits, '.', '-' and '_'"),
            ("'Ä.peer'", "invalid principal \"Ä.peer\" at position 1: MSP id may contain only ASCII letters, digits, '.', '-' and '_'"),
            ("ANY", "expected a sub-policy name (ASCII letters, digits, '-', '_') at position 3, found end of input"),
            ("ANY(Writers)", "expected whitespace and a sub-policy name at position 3, found '('"),
            ("MAJORITY Admins extra", "expected end of input at position 16, found 'e'"),
            ("ALL Ad!mins", "expected end of input at position 6, found '!'"),
            ("", "empty policy"),
            (" \n\t ", "empty policy"),
        ];
        for &(text, message) in cases {
            let err = Policy::parse(text).expect_err(text);
            assert_eq!(err.to_string(), message, "{text}");
        }
        let err = SignaturePolicy::parse("ANY Writers").expect_err("not a signature policy");
        assert_eq!(
            err.to_string(),
            "expected 'AND', 'OR', 'OutOf' or a quoted principal at position 0, found 'ANY'"
        );
        let err = "  'A.peer'"
            .parse::<ImplicitMetaPolicy>()
            .expect_err("not implicit meta");
        assert_eq!(
            err.to_string(),
            "expected 'ANY', 'ALL' or 'MAJORITY' at position 2, found '\\''"
        );
    }

    #[test]
    fn display_is_canonical() {
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("or('A.peer' , \"B.peer\")", "OR('A.peer', 'B.peer')"),
            ("OutOf(2, 'A.peer', 'B.peer')", "AND('A.peer', 'B.peer')"),
            ("OutOf(1, 'A.peer', 'B.peer')", "OR('A.peer', 'B.peer')"),
            ("OutOf(1, 'A.peer')", "AND('A.peer')"),
            ("outof( 002 ,'A.peer','B.peer','C.peer')", "OutOf(2, 'A.peer', 'B.peer', 'C.peer')"),
            ("  \"Org1MSP.member\"  ", "'Org1MSP.member'"),
            ("majority   Admins", "MAJORITY Admins"),
            (NESTED, "OutOf(2, 'A.peer', AND('B.peer', 'C.peer'), OR('D.admin', 'E.admin'))"),
        ];
        for &(text, canonical) in cases {
            assert_eq!(
                Policy::parse(text).expect("parses").to_string(),
                canonical,
                "{text}"
            );
            assert_round_trip(text);
        }
    }

    #[test]
    fn nesting_and_size_caps() {
        let nested =
            |depth: usize| format!("{}'A.peer'{}", "AND(".repeat(depth), ")".repeat(depth));
        let deepest = sig(&nested(MAX_NESTING_DEPTH));
        assert_eq!(deepest.depth(), MAX_NESTING_DEPTH);
        assert!(deepest.is_satisfied_by(&signers("A.peer#1")));
        assert_round_trip(&nested(MAX_NESTING_DEPTH));
        let too_deep = Policy::parse(&nested(MAX_NESTING_DEPTH + 1)).expect_err("too deep");
        assert_eq!(
            too_deep,
            PolicyError::NestingTooDeep {
                max: MAX_NESTING_DEPTH,
                position: Some(4 * MAX_NESTING_DEPTH)
            }
        );
        // Hostile input: far deeper than the stack could take, still a clean error.
        let hostile = "AND(".repeat(MAX_POLICY_LEN / 4);
        assert!(matches!(
            Policy::parse(&hostile),
            Err(PolicyError::NestingTooDeep { .. })
        ));
        // Programmatic construction obeys the same cap.
        let at_cap = SignaturePolicy::and(vec![deepest]).expect_err("one level too deep");
        assert_eq!(
            at_cap,
            PolicyError::NestingTooDeep {
                max: MAX_NESTING_DEPTH,
                position: None
            }
        );

        let long = format!("'A.peer'{}", " ".repeat(MAX_POLICY_LEN));
        assert_eq!(
            Policy::parse(&long),
            Err(PolicyError::TooLong {
                len: MAX_POLICY_LEN + 8,
                max: MAX_POLICY_LEN
            })
        );
        let fits = format!("'A.peer'{}", " ".repeat(MAX_POLICY_LEN - 8));
        assert!(Policy::parse(&fits).is_ok());
    }

    #[test]
    fn large_policies_evaluate_quickly() {
        // 3000 distinct orgs: nothing contested, linear time.
        let principals: Vec<String> = (0..3000).map(|i| format!("'O{i}.peer'")).collect();
        let text = format!("OutOf(1500, {})", principals.join(","));
        assert!(text.len() <= MAX_POLICY_LEN);
        let policy = sig(&text);
        let spec: Vec<String> = (0..1500)
            .map(|i| format!("O{i}.peer#{}", i % 250))
            .collect();
        let mut many = signers(&spec.join(" "));
        for (i, s) in many.iter_mut().enumerate() {
            s.id[..8].copy_from_slice(&(i as u64).to_le_bytes());
        }
        assert!(policy.is_satisfied_by(&many));
        assert!(!policy.is_satisfied_by(&many[1..]));

        // 20 principals all competing for one org's 20 signers of mixed roles.
        let mixed: Vec<&str> = ["'A.member'", "'A.peer'", "'A.client'", "'A.admin'"]
            .into_iter()
            .cycle()
            .take(20)
            .collect();
        let policy = sig(&format!("OutOf(15, {})", mixed.join(", ")));
        let spec: Vec<String> = (1..=20)
            .map(|i| format!("A.{}#{i}", ["peer", "client", "admin", "orderer"][i % 4]))
            .collect();
        let who = signers(&spec.join(" "));
        assert!(policy.is_satisfied_by(&who));
        assert!(!policy.is_satisfied_by(&who[..14]));
    }

    #[test]
    fn constructors_validate() {
        let a = || SignaturePolicy::signed_by("A.peer".parse().expect("principal"));
        assert_eq!(
            SignaturePolicy::n_out_of(0, vec![a()]),
            Err(PolicyError::BadOutOfCount {
                n: 0,
                count: 1,
                position: None
            })
        );
        assert_eq!(
            SignaturePolicy::n_out_of(2, vec![a()]),
            Err(PolicyError::BadOutOfCount {
                n: 2,
                count: 1,
                position: None
            })
        );
        assert!(SignaturePolicy::and(vec![]).is_err());
        assert!(SignaturePolicy::or(vec![]).is_err());
        let both = SignaturePolicy::and(vec![a(), a()]).expect("valid");
        assert_eq!(both.to_string(), "AND('A.peer', 'A.peer')");
        let SignaturePolicy::NOutOf(gate) = &both else {
            panic!("a gate")
        };
        assert_eq!((gate.n(), gate.rules().len()), (2, 2));

        assert!(Principal::new("Org1MSP", PrincipalRole::Member).is_ok());
        assert!(matches!(
            Principal::new("", PrincipalRole::Member),
            Err(PolicyError::InvalidPrincipal { position: None, .. })
        ));
        assert!(Principal::new("Org 1", PrincipalRole::Exactly(Role::Peer)).is_err());
        assert_eq!("member".parse::<PrincipalRole>(), Ok(PrincipalRole::Member));
        assert!("members".parse::<PrincipalRole>().is_err());

        assert!(ImplicitMetaPolicy::new(ImplicitMetaRule::Any, "Writers").is_ok());
        assert_eq!(
            ImplicitMetaPolicy::new(ImplicitMetaRule::Any, "Wri ters"),
            Err(PolicyError::InvalidSubPolicyName {
                name: "Wri ters".into()
            })
        );
        assert!(ImplicitMetaPolicy::new(ImplicitMetaRule::All, "").is_err());
        assert_eq!(ImplicitMetaRule::Majority.threshold(0), 1);
        assert_eq!(ImplicitMetaRule::All.threshold(0), 1);
    }

    #[test]
    fn principals_and_msp_ids() {
        let policy = sig(NESTED);
        let listed: Vec<String> = policy.principals().iter().map(|p| p.to_string()).collect();
        assert_eq!(listed, ["A.peer", "B.peer", "C.peer", "D.admin", "E.admin"]);
        assert_eq!(policy.msp_ids(), ["A", "B", "C", "D", "E"]);
        let policy = sig("OR('Org2.peer', AND('Org1.member', 'Org2.admin'), 'a.b.client')");
        assert_eq!(policy.msp_ids(), ["Org1", "Org2", "a.b"]);
        let p = &policy.principals()[2];
        assert_eq!(
            (p.msp_id(), p.role()),
            ("Org2", PrincipalRole::Exactly(Role::Admin))
        );
    }
}

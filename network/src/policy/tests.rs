//! Unit tests of parsing, display and evaluation.

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
    let nested = |depth: usize| format!("{}'A.peer'{}", "AND(".repeat(depth), ")".repeat(depth));
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

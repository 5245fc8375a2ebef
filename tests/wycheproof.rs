//! Google's Wycheproof vectors, run through the server's own signature code.
//!
//! Every RSASSA-PKCS1-v1_5 / SHA-256 verification vector for 2048, 3072 and 4096-bit keys,
//! and every ECDSA P-256 / SHA-256 vector in IEEE P1363 form (raw `r || s`, the JWS ES256
//! encoding), goes through exactly what a token's signature goes through: the key is built
//! by `jwk::rsa_key` / `jwk::p256_key` (as from a JWKS) and the signature is checked by
//! `jwt::verify_rs256` / `jwt::verify_es256`.
//!
//! Expectations:
//! - `valid` → the signature verifies; `invalid` → it does not.
//! - `acceptable` → see [`rsa_acceptable_expectation`]: we expect rejection.
//! - A group whose public key our key constructors refuse must contain only `invalid`
//!   vectors: refusing a key is only right if nothing signed with it may verify.
//!
//! No vector is skipped: each set's check count must equal the set's `numberOfTests`, and
//! every set must hold at least a sane minimum, so these tests cannot pass vacuously.
//! Mismatches are collected and reported together, each with its tcId and comment.

use mcp_warden::auth::{jwk, jwt};
use wycheproof::{EllipticCurve, HashFunction, TestResult};

/// Each of the sets used here holds about 260 vectors (Wycheproof 0.7.0: 259, 259, 258
/// RSA and 262 P-256); far fewer means the data did not load as intended.
const MIN_VECTORS_PER_SET: usize = 200;

/// What was checked in one set.
#[derive(Default, Debug)]
struct Tally {
    groups: usize,
    /// Groups whose public key `rsa_key` / `p256_key` refused.
    refused_keys: usize,
    valid: usize,
    invalid: usize,
    acceptable: usize,
    mismatches: Vec<String>,
}

/// The vectors of a group (RSA and ECDSA tests are different types with the same fields).
macro_rules! vectors {
    ($tests:expr) => {
        $tests
            .iter()
            .map(|t| Vector {
                tc_id: t.tc_id,
                result: t.result,
                comment: &t.comment,
                flags: format!("{:?}", t.flags),
                msg: &t.msg,
                sig: &t.sig,
            })
            .collect::<Vec<Vector<'_>>>()
    };
}

/// One vector, whatever its set: enough to check it and to report it.
struct Vector<'a> {
    tc_id: usize,
    result: TestResult,
    comment: &'a str,
    flags: String,
    msg: &'a [u8],
    sig: &'a [u8],
}

impl Tally {
    /// Checks one group: with the key our constructor built, every vector's `verify` must
    /// match its expectation (`acceptable` decided by `acceptable`); if the constructor
    /// refused the key, every vector must be `invalid`.
    fn group<K>(
        &mut self,
        key: Result<K, &str>,
        vectors: &[Vector<'_>],
        verify: impl Fn(&K, &[u8], &[u8]) -> bool,
        acceptable: impl Fn(&Vector<'_>) -> Option<bool>,
        names: (&str, &str),
    ) {
        let (verify_name, key_name) = names;
        self.groups += 1;
        if key.is_err() {
            self.refused_keys += 1;
        }
        for v in vectors {
            self.count(v.result);
            let mismatch = match &key {
                Ok(key) => {
                    let expected = match v.result {
                        TestResult::Valid => Some(true),
                        TestResult::Invalid => Some(false),
                        TestResult::Acceptable => acceptable(v),
                    };
                    let got = verify(key, v.msg, v.sig);
                    (expected != Some(got)).then(|| {
                        format!(
                            "{verify_name} returned {got}, expected {}",
                            expected.map_or("<undecided>".to_string(), |e| e.to_string())
                        )
                    })
                }
                Err(reason) => (v.result != TestResult::Invalid).then(|| {
                    format!(
                        "{key_name} refused the group key ({reason}) but Wycheproof does not \
                         call this vector invalid"
                    )
                }),
            };
            if let Some(what) = mismatch {
                self.mismatches.push(format!(
                    "  tcId {} ({:?}, {:?}, {}): {what}",
                    v.tc_id, v.result, v.comment, v.flags
                ));
            }
        }
    }

    fn checked(&self) -> usize {
        self.valid + self.invalid + self.acceptable
    }

    fn count(&mut self, result: TestResult) {
        match result {
            TestResult::Valid => self.valid += 1,
            TestResult::Invalid => self.invalid += 1,
            TestResult::Acceptable => self.acceptable += 1,
        }
    }

    /// Reports the tally and fails on any mismatch or a vector left unchecked.
    fn assert_complete(&self, set: &str, number_of_tests: usize) {
        eprintln!(
            "{set}: {} vectors checked ({} valid, {} invalid, {} acceptable) in {} groups, \
             {} group key(s) refused",
            self.checked(),
            self.valid,
            self.invalid,
            self.acceptable,
            self.groups,
            self.refused_keys,
        );
        assert!(
            self.mismatches.is_empty(),
            "{set}: {} of {} vectors disagree with Wycheproof:\n{}",
            self.mismatches.len(),
            self.checked(),
            self.mismatches.join("\n")
        );
        assert_eq!(
            self.checked(),
            number_of_tests,
            "{set}: every vector of the set must be checked"
        );
        assert!(
            self.checked() >= MIN_VECTORS_PER_SET,
            "{set}: only {} vectors checked",
            self.checked()
        );
        assert!(self.valid > 0, "{set}: no valid vector was checked");
        assert!(self.invalid > 0, "{set}: no invalid vector was checked");
    }
}

/// The `acceptable` RSA PKCS#1 v1.5 vectors are signatures whose DigestInfo leaves out the
/// NULL `parameters` of the SHA-256 AlgorithmIdentifier (flag `MissingNull`). We expect
/// them to be REJECTED: `verify_rs256` (through the `rsa` crate) rebuilds the one encoding
/// RFC 8017 §9.2 specifies, with the explicit NULL, and compares it byte for byte with the
/// recovered encoded message, rather than parsing the ASN.1 it receives. Accepting a single
/// encoding is the strict and safe choice (parsing variants is where PKCS#1 v1.5 forgeries
/// have come from), and every JWS RS256 signer emits the NULL, so nothing legitimate is
/// lost. Any other kind of `acceptable` vector has no decided expectation yet: it fails
/// the test until someone decides.
fn rsa_acceptable_expectation(flags: &[wycheproof::rsa_pkcs1_verify::TestFlag]) -> Option<bool> {
    use wycheproof::rsa_pkcs1_verify::TestFlag;
    (flags == [TestFlag::MissingNull]).then_some(false)
}

/// Runs one Wycheproof RSA PKCS#1 v1.5 SHA-256 set of `bits`-bit keys through
/// `rsa_key` + `verify_rs256`.
fn check_rsa_set(name: wycheproof::rsa_pkcs1_verify::TestName, bits: usize) {
    let set_name = format!("{name:?}");
    let set = wycheproof::rsa_pkcs1_verify::TestSet::load(name).expect("Wycheproof set loads");
    let mut tally = Tally::default();
    for group in &set.test_groups {
        assert_eq!(group.hash, HashFunction::Sha2_256, "{set_name}: hash");
        assert_eq!(group.key_size, bits, "{set_name}: key size");
        let vectors = vectors!(group.tests);
        let flags_of = |v: &Vector<'_>| {
            let t = group.tests.iter().find(|t| t.tc_id == v.tc_id);
            t.and_then(|t| rsa_acceptable_expectation(&t.flags))
        };
        tally.group(
            jwk::rsa_key(&group.key.n, &group.key.e),
            &vectors,
            jwt::verify_rs256,
            flags_of,
            ("verify_rs256", "rsa_key"),
        );
    }
    tally.assert_complete(&set_name, set.number_of_tests);
}

#[test]
fn rs256_verify_agrees_with_every_wycheproof_rsa2048_sha256_vector() {
    check_rsa_set(wycheproof::rsa_pkcs1_verify::TestName::Rsa2048Sha256, 2048);
}

#[test]
fn rs256_verify_agrees_with_every_wycheproof_rsa3072_sha256_vector() {
    check_rsa_set(wycheproof::rsa_pkcs1_verify::TestName::Rsa3072Sha256, 3072);
}

#[test]
fn rs256_verify_agrees_with_every_wycheproof_rsa4096_sha256_vector() {
    check_rsa_set(wycheproof::rsa_pkcs1_verify::TestName::Rsa4096Sha256, 4096);
}

/// Every ECDSA P-256 SHA-256 P1363 vector through `p256_key` + `verify_es256`.
///
/// The key is taken from the group's uncompressed SEC1 point `04 || x || y`, whose
/// coordinates are always the full 32 bytes, as RFC 7518 §6.2.1 requires of a JWK's `x`
/// and `y`. (The `wx`/`wy` integers are minimal big-endian, sometimes with a sign byte.)
/// P1363 has no `acceptable` vectors; if one appears, the test fails until it is decided.
#[test]
fn es256_verify_agrees_with_every_wycheproof_p256_sha256_p1363_vector() {
    use wycheproof::ecdsa::{TestGroupTypeId, TestName, TestSet};
    let set_name = "EcdsaSecp256r1Sha256P1363";
    let set = TestSet::load(TestName::EcdsaSecp256r1Sha256P1363).expect("Wycheproof set loads");
    let mut tally = Tally::default();
    for group in &set.test_groups {
        assert_eq!(group.test_type, TestGroupTypeId::EcdsaP1363, "{set_name}");
        assert_eq!(group.hash, HashFunction::Sha2_256, "{set_name}: hash");
        assert_eq!(
            group.key.curve,
            EllipticCurve::Secp256r1,
            "{set_name}: curve"
        );
        let point: &[u8] = &group.key.key;
        assert!(
            point.len() == 65 && point[0] == 0x04,
            "{set_name}: the group key is not an uncompressed P-256 point"
        );
        let vectors = vectors!(group.tests);
        tally.group(
            jwk::p256_key(&point[1..33], &point[33..]),
            &vectors,
            jwt::verify_es256,
            |_| None,
            ("verify_es256", "p256_key"),
        );
    }
    tally.assert_complete(set_name, set.number_of_tests);
}

//! Token parsing and verification (`claimgate::core::token::verify`) against a reference.
//!
//! Never panics, and never accepts a token the reference refuses. The reference is
//! jsonwebtoken's own `decode` (signature, algorithm, issuer, audience) with the key, algorithm
//! list and audiences configured here, and the times (`exp` required, `nbf`, the leeway) and
//! the `sub` string checked in this file; when both accept, they read the same claims.
//!
//! Inputs are raw text (after an even first byte), or (after an odd one) tokens built from fuzzed parts (header fields, claims, duplicate
//! keys, the signing key and algorithm, damage after signing) and signed for real, so the
//! paths behind a valid signature are explored too. The keys are fixed: the development RSA
//! key in `config/keys/`, and an EC P-256 and an Ed25519 key made from constant seeds.
#![no_main]

use std::sync::OnceLock;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use claimgate::Snapshot;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

const RSA_ISSUER: &str = "https://rsa.fuzz.example";
const MIXED_ISSUER: &str = "https://mixed.fuzz.example";

/// One SSO as the reference sees it.
struct RefSso {
    issuer: &'static str,
    audiences: &'static [&'static str],
    algorithms: &'static [Algorithm],
    leeway: u64,
    /// kid, algorithm family it verifies, key.
    keys: Vec<(String, Algorithm, DecodingKey)>,
}

/// A key the harness signs with.
struct Signer {
    kid: &'static str,
    alg: Algorithm,
    key: EncodingKey,
}

struct Fixture {
    snapshot: Snapshot,
    ssos: Vec<RefSso>,
    /// RSA (in the JWKS), EC (in the JWKS), Ed25519 (in the JWKS), EC (a stranger).
    signers: Vec<Signer>,
    /// Secrets an HMAC forgery might try: the public keys' bytes.
    secrets: Vec<Vec<u8>>,
    _dir: tempfile::TempDir,
}

fn public_jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Value {
    let jwk = Jwk::from_encoding_key(key, alg).expect("a JWK of the public key");
    let mut jwk = serde_json::to_value(jwk).expect("a JWK is JSON");
    let obj = jwk.as_object_mut().expect("a JWK is an object");
    obj.retain(|k, _| ["kty", "n", "e", "crv", "x", "y"].contains(&k.as_str()));
    obj.insert("kid".into(), kid.into());
    obj.insert("use".into(), "sig".into());
    jwk
}

/// A P-256 key from a constant scalar: RFC 5915 `ECPrivateKey` without its public key.
fn ec_key(scalar: u8) -> EncodingKey {
    let mut der = vec![0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20];
    der.extend([scalar; 32]);
    der.extend([
        0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ]);
    let pair = aws_lc_rs::signature::EcdsaKeyPair::from_private_key_der(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &der,
    )
    .expect("a P-256 key");
    let pkcs8 = pair.to_pkcs8v1().expect("PKCS#8");
    EncodingKey::from_ec_der(pkcs8.as_ref())
}

fn ed_key(seed: u8) -> EncodingKey {
    let pair =
        aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).expect("a key");
    let pkcs8 = pair.to_pkcs8v1().expect("PKCS#8");
    EncodingKey::from_ed_der(pkcs8.as_ref())
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = claimgate_fuzz::repo_root().join("config/keys");
        let rsa_pem = std::fs::read(root.join("dev-only-private-key.pem")).expect("dev key");
        let signers = vec![
            Signer {
                kid: "dev-rsa-1",
                alg: Algorithm::RS256,
                key: EncodingKey::from_rsa_pem(&rsa_pem).expect("an RSA key"),
            },
            Signer {
                kid: "ec-1",
                alg: Algorithm::ES256,
                key: ec_key(7),
            },
            Signer {
                kid: "ed-1",
                alg: Algorithm::EdDSA,
                key: ed_key(9),
            },
            Signer {
                kid: "ec-1",
                alg: Algorithm::ES256,
                key: ec_key(8),
            },
        ];
        let rsa_jwks: Value =
            serde_json::from_slice(&std::fs::read(root.join("dev-jwks.json")).expect("dev JWKS"))
                .expect("JSON");
        let mixed_jwks = json!({"keys": [
            public_jwk(&signers[1].key, Algorithm::ES256, "ec-1"),
            public_jwk(&signers[2].key, Algorithm::EdDSA, "ed-1"),
        ]});
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(dir.path().join("keys")).expect("keys/");
        std::fs::write(dir.path().join("keys/rsa.json"), rsa_jwks.to_string()).expect("write");
        std::fs::write(dir.path().join("keys/mixed.json"), mixed_jwks.to_string()).expect("write");
        std::fs::write(
            dir.path().join("sso.yaml"),
            format!(
                "sso_integrations:
  - name: rsa
    type: oidc
    issuer: {RSA_ISSUER}
    audiences: [claimgate, other]
    jwks_file: keys/rsa.json
    algorithms: [RS256, PS256]
    leeway_seconds: 30
  - name: mixed
    type: oidc
    issuer: {MIXED_ISSUER}
    audiences: [fuzz]
    jwks_file: keys/mixed.json
    algorithms: [ES256, EdDSA]
    leeway_seconds: 0
"
            ),
        )
        .expect("write");
        let snapshot = claimgate::core::load::load(dir.path())
            .expect("the fuzz configuration loads")
            .snapshot;
        let decoding = |jwks: &Value| -> Vec<(String, Algorithm, DecodingKey)> {
            jwks["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .map(|k| {
                    let jwk: Jwk = serde_json::from_value(k.clone()).expect("a JWK");
                    let family = match k["kty"].as_str() {
                        Some("RSA") => Algorithm::RS256,
                        Some("EC") => Algorithm::ES256,
                        _ => Algorithm::EdDSA,
                    };
                    let kid = k["kid"].as_str().expect("kid").to_owned();
                    (kid, family, DecodingKey::from_jwk(&jwk).expect("a key"))
                })
                .collect()
        };
        let ssos = vec![
            RefSso {
                issuer: RSA_ISSUER,
                audiences: &["claimgate", "other"],
                algorithms: &[Algorithm::RS256, Algorithm::PS256],
                leeway: 30,
                keys: decoding(&rsa_jwks),
            },
            RefSso {
                issuer: MIXED_ISSUER,
                audiences: &["fuzz"],
                algorithms: &[Algorithm::ES256, Algorithm::EdDSA],
                leeway: 0,
                keys: decoding(&mixed_jwks),
            },
        ];
        let secrets = vec![
            rsa_pem.clone(),
            rsa_jwks["keys"][0]["n"]
                .as_str()
                .unwrap_or("")
                .as_bytes()
                .to_vec(),
            mixed_jwks.to_string().into_bytes(),
        ];
        Fixture {
            snapshot,
            ssos,
            signers,
            secrets,
            _dir: dir,
        }
    })
}

fn same_family(a: Algorithm, b: Algorithm) -> bool {
    a.family() == b.family() && (a.family() != jsonwebtoken::AlgorithmFamily::Ec || a == b)
}

/// The reference's claims when it accepts `token` at `now`.
fn reference(f: &Fixture, token: &str, now: u64) -> Option<Value> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let unverified = jsonwebtoken::dangerous::insecure_decode::<Value>(token).ok()?;
    let iss = unverified.claims.get("iss")?.as_str()?;
    let sso = f.ssos.iter().find(|s| s.issuer == iss)?;
    if !sso.algorithms.contains(&header.alg) {
        return None;
    }
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["iss", "aud"]);
    validation.set_issuer(&[sso.issuer]);
    validation.set_audience(sso.audiences);
    let claims = sso
        .keys
        .iter()
        .filter(|(kid, family, _)| {
            header.kid.as_deref().is_none_or(|k| k == kid) && same_family(*family, header.alg)
        })
        .find_map(|(_, _, key)| jsonwebtoken::decode::<Value>(token, key, &validation).ok())?
        .claims;
    // RFC 7519 4.1.4 and 4.1.5, with the configured leeway.
    let (now, leeway) = (now as f64, sso.leeway as f64);
    let exp = claims.get("exp")?.as_f64()?;
    if now > exp + leeway {
        return None;
    }
    if let Some(nbf) = claims.get("nbf") {
        if now + leeway < nbf.as_f64()? {
            return None;
        }
    }
    claims.get("sub")?.as_str()?;
    Some(claims)
}

// ---- built tokens -----------------------------------------------------------------------

#[derive(Debug, Arbitrary)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<String>),
}

impl Json {
    fn value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => json!(b),
            Json::Int(i) => json!(i),
            Json::Float(f) => json!(f),
            Json::Text(s) => json!(s),
            Json::List(l) => json!(l),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Choice<T> {
    Absent,
    Good,
    Other(T),
    Json(Json),
}

#[derive(Debug, Arbitrary)]
struct Header {
    alg: Choice<String>,
    alg_pick: u8,
    kid: Choice<String>,
    typ: Option<String>,
    cty: Option<String>,
    /// One of the headers that bring or point at a key, or demand processing.
    refused: Option<u8>,
    extra: Vec<(String, Json)>,
}

#[derive(Debug, Arbitrary)]
struct Claims {
    sso: bool,
    iss: Choice<String>,
    aud: Choice<Vec<String>>,
    aud_list: bool,
    /// Seconds from now.
    exp: Choice<i32>,
    nbf: Choice<i32>,
    sub: Choice<String>,
    extra: Vec<(String, Json)>,
}

#[derive(Debug, Arbitrary)]
enum Sign {
    /// One of the fixture's keys, with its own algorithm.
    Key(u8),
    /// The RSA key with another RSA algorithm.
    Rsa(u8),
    /// HMAC keyed with public key material (the algorithm-confusion forgery).
    Hmac(u8),
    /// These bytes as the signature.
    Bytes(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum Damage {
    None,
    /// One byte of the whole token replaced.
    Byte(u16, u8),
    /// A duplicate of a header (true) or claim key, spliced into the JSON before signing.
    Duplicate(bool, String, Json),
    /// Text spliced into the token at a place.
    Insert(u16, String),
    /// The payload re-encoded with padding or the standard alphabet, after signing.
    Reencode(bool),
}

#[derive(Debug, Arbitrary)]
struct Built {
    header: Header,
    claims: Claims,
    sign: Sign,
    damage: Damage,
    /// Raw payload bytes instead of the claims (still signed).
    raw_payload: Option<Vec<u8>>,
}

const ALGS: [&str; 12] = [
    "RS256", "PS256", "RS384", "RS512", "ES256", "ES384", "EdDSA", "Ed25519", "HS256", "none",
    "rs256", "",
];
const REFUSED: [&str; 5] = ["crit", "jku", "x5u", "jwk", "x5c"];

fn pick<'a, T>(list: &'a [T], i: u8) -> &'a T {
    &list[usize::from(i) % list.len()]
}

fn put<T>(
    map: &mut Map<String, Value>,
    key: &str,
    choice: &Choice<T>,
    good: Value,
    other: impl Fn(&T) -> Value,
) {
    match choice {
        Choice::Absent => None,
        Choice::Good => Some(good),
        Choice::Other(t) => Some(other(t)),
        Choice::Json(j) => Some(j.value()),
    }
    .map(|v| map.insert(key.to_owned(), v));
}

fn build(f: &Fixture, b: &Built, now: u64) -> String {
    let signer = match b.sign {
        Sign::Key(i) | Sign::Rsa(i) | Sign::Hmac(i) => pick(&f.signers, i),
        Sign::Bytes(_) => &f.signers[0],
    };
    let sign_alg = match b.sign {
        Sign::Rsa(i) => *pick(
            &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            i,
        ),
        Sign::Hmac(_) => Algorithm::HS256,
        _ => signer.alg,
    };
    let natural = serde_json::to_value(sign_alg).unwrap_or(Value::Null);
    let mut header = Map::new();
    put(&mut header, "alg", &b.header.alg, natural, |s: &String| {
        json!(s)
    });
    if matches!(b.header.alg, Choice::Other(_)) && b.header.alg_pick % 2 == 0 {
        header.insert("alg".into(), json!(pick(&ALGS, b.header.alg_pick / 2)));
    }
    put(
        &mut header,
        "kid",
        &b.header.kid,
        json!(signer.kid),
        |s: &String| json!(s),
    );
    if let Some(t) = &b.header.typ {
        header.insert("typ".into(), json!(t));
    }
    if let Some(c) = &b.header.cty {
        header.insert("cty".into(), json!(c));
    }
    if let Some(r) = b.header.refused {
        header.insert(pick(&REFUSED, r).to_string(), json!("x"));
    }
    for (k, v) in &b.header.extra {
        header.insert(k.clone(), v.value());
    }
    let c = &b.claims;
    let sso = &f.ssos[usize::from(c.sso)];
    let mut claims = Map::new();
    put(
        &mut claims,
        "iss",
        &c.iss,
        json!(sso.issuer),
        |s: &String| json!(s),
    );
    let aud = if c.aud_list {
        json!([sso.audiences[0]])
    } else {
        json!(sso.audiences[0])
    };
    put(&mut claims, "aud", &c.aud, aud, |l: &Vec<String>| json!(l));
    let at = |d: &i32| json!(now as i64 + i64::from(*d));
    put(&mut claims, "exp", &c.exp, json!(now + 600), at);
    put(&mut claims, "nbf", &c.nbf, json!(now - 60), at);
    put(
        &mut claims,
        "sub",
        &c.sub,
        json!("repo:acme/api:ref:refs/heads/main"),
        |s: &String| json!(s),
    );
    for (k, v) in &c.extra {
        claims.insert(k.clone(), v.value());
    }
    let mut header = Value::Object(header).to_string();
    let mut payload = match &b.raw_payload {
        Some(raw) => raw.clone(),
        None => Value::Object(claims).to_string().into_bytes(),
    };
    if let Damage::Duplicate(in_header, key, value) = &b.damage {
        let field = format!("{}:{},", json!(key), value.value());
        if *in_header && header.len() > 2 {
            header.insert_str(1, &field);
        } else if !in_header && payload.starts_with(b"{") && payload.len() > 2 {
            payload.splice(1..1, field.into_bytes());
        }
    }
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.as_bytes()),
        URL_SAFE_NO_PAD.encode(&payload)
    );
    let signature = match &b.sign {
        Sign::Bytes(bytes) => URL_SAFE_NO_PAD.encode(bytes),
        Sign::Hmac(i) => EncodingKey::from_secret(pick(&f.secrets, *i))
            .ok()
            .and_then(|k| jsonwebtoken::crypto::sign(input.as_bytes(), &k, sign_alg).ok())
            .unwrap_or_default(),
        _ => {
            jsonwebtoken::crypto::sign(input.as_bytes(), &signer.key, sign_alg).unwrap_or_default()
        }
    };
    let mut token = format!("{input}.{signature}");
    match &b.damage {
        Damage::Byte(at, byte) if !token.is_empty() => {
            let mut bytes = token.into_bytes();
            let i = usize::from(*at) % bytes.len();
            bytes[i] = *byte;
            token = String::from_utf8_lossy(&bytes).into_owned();
        }
        Damage::Insert(at, text) => {
            let mut i = usize::from(*at) % (token.len() + 1);
            while !token.is_char_boundary(i) {
                i -= 1;
            }
            token.insert_str(i, text);
        }
        Damage::Reencode(padded) => {
            let parts: Vec<&str> = token.split('.').collect();
            if let [h, p, s] = parts[..] {
                let bytes = URL_SAFE_NO_PAD.decode(p).unwrap_or_default();
                let p = if *padded {
                    base64::engine::general_purpose::URL_SAFE.encode(bytes)
                } else {
                    STANDARD.encode(bytes)
                };
                token = format!("{h}.{p}.{s}");
            }
        }
        _ => {}
    }
    token
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let now = claimgate::core::clock::unix_now();
    // An even first byte: the rest is the token (how the committed seeds are written). Odd:
    // the rest builds one.
    let token = match data.split_first() {
        Some((mode, rest)) if mode % 2 == 0 => String::from_utf8_lossy(rest).into_owned(),
        Some((_, rest)) => match Built::arbitrary_take_rest(Unstructured::new(rest)) {
            Ok(b) => build(f, &b, now),
            Err(_) => return,
        },
        None => return,
    };
    let Ok(verified) = claimgate::core::token::verify(&f.snapshot, &token, now) else {
        return;
    };
    let claims = reference(f, &token, now)
        .unwrap_or_else(|| panic!("claimgate accepts a token the reference refuses: {token}"));
    assert_eq!(verified.claims, claims, "{token}");
    assert_eq!(
        verified.claims.get("iss").and_then(Value::as_str),
        Some(verified.sso.issuer.as_ref()),
        "{token}"
    );
});

use super::*;
// Test keys are generated with aws-lc-rs: the unit tests run with default features.
use aws_lc_rs::signature;

fn all() -> AlgSet {
    let mut s = AlgSet::default();
    for a in Alg::ALL {
        s.insert(a);
    }
    s
}

fn rsa_jwk(kid: &str, bytes: usize) -> Value {
    let mut n = vec![0xC5u8; bytes];
    n[bytes - 1] |= 1;
    serde_json::json!({"kty": "RSA", "kid": kid, "n": URL_SAFE_NO_PAD.encode(&n), "e": "AQAB"})
}

#[test]
fn oct_and_weak_rsa_keys_are_dropped() {
    let doc = serde_json::json!({"keys": [
        {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
        rsa_jwk("weak", 128),
        rsa_jwk("good", 256),
    ]});
    let (set, skipped) = KeySet::from_jwks(doc.to_string().as_bytes(), all()).unwrap();
    assert_eq!(set.len(), 1);
    assert_eq!(skipped.len(), 2);
    assert!(skipped[1].reason.contains("1024 bits"), "{:?}", skipped);
    assert!(set.find(Some("good"), Alg::RS256).is_ok());
    assert_eq!(
        set.find(Some("h"), Alg::RS256).unwrap_err(),
        KeyMiss::Unknown
    );
}

#[test]
fn encryption_keys_and_foreign_algorithms_are_dropped() {
    let mut enc = rsa_jwk("enc", 256);
    enc["use"] = "enc".into();
    let mut ps = rsa_jwk("ps", 256);
    ps["alg"] = "PS256".into();
    let mut rs_only = AlgSet::default();
    rs_only.insert(Alg::RS256);
    let doc = serde_json::json!({ "keys": [enc, ps] });
    let (set, skipped) = KeySet::from_jwks(doc.to_string().as_bytes(), rs_only).unwrap();
    assert!(set.is_empty());
    assert_eq!(skipped.len(), 2);
}

#[test]
fn key_without_kid_needs_exactly_one_fitting_key() {
    let doc = serde_json::json!({"keys": [rsa_jwk("a", 256)]});
    let (one, _) = KeySet::from_jwks(doc.to_string().as_bytes(), all()).unwrap();
    assert!(one.find(None, Alg::RS256).is_ok());
    assert_eq!(one.find(None, Alg::ES256).unwrap_err(), KeyMiss::Unknown);
    assert_eq!(
        one.find(Some("a"), Alg::ES256).unwrap_err(),
        KeyMiss::WrongType
    );
    let doc = serde_json::json!({"keys": [rsa_jwk("a", 256), rsa_jwk("b", 256)]});
    let (two, _) = KeySet::from_jwks(doc.to_string().as_bytes(), all()).unwrap();
    assert_eq!(two.find(None, Alg::RS256).unwrap_err(), KeyMiss::Unknown);
}

#[test]
fn too_many_keys_and_garbage_are_refused() {
    let keys: Vec<Value> = (0..101).map(|i| rsa_jwk(&i.to_string(), 256)).collect();
    let doc = serde_json::json!({ "keys": keys });
    assert_eq!(
        KeySet::from_jwks(doc.to_string().as_bytes(), all()).unwrap_err(),
        KeySetError::TooMany(101)
    );
    assert!(KeySet::from_jwks(b"{}", all()).is_err());
    assert!(KeySet::from_jwks(b"not json", all()).is_err());
}

fn skipped_reason(jwk: Value) -> Option<String> {
    let doc = serde_json::json!({ "keys": [jwk] });
    let (set, skipped) = KeySet::from_jwks(doc.to_string().as_bytes(), all()).unwrap();
    assert_eq!(set.len() + skipped.len(), 1);
    skipped.into_iter().next().map(|k| k.reason)
}

fn with(mut jwk: Value, field: &str, bytes: &[u8]) -> Value {
    jwk[field] = URL_SAFE_NO_PAD.encode(bytes).into();
    jwk
}

#[test]
fn rsa_keys_whose_numbers_no_verifier_accepts_are_dropped() {
    let good = rsa_jwk("k", 256);
    assert_eq!(skipped_reason(good.clone()), None);
    for (e, why) in [
        (&[1u8][..], "e = 1"),
        (&[0u8][..], "e = 0"),
        (&[2u8][..], "even"),
        (&[1, 0, 0][..], "even"),
        (&[3, 0, 0, 0, 1][..], "34 bits"),
    ] {
        let reason = skipped_reason(with(good.clone(), "e", e)).unwrap_or_default();
        assert!(reason.contains(why), "e = {e:?}: {reason:?}");
    }
    let mut even = vec![0xC5u8; 256];
    even[255] = 0xC4;
    let reason = skipped_reason(with(good.clone(), "n", &even)).unwrap_or_default();
    assert!(reason.contains("modulus is even"), "{reason:?}");
    let huge = vec![0xC5u8; 1025];
    let reason = skipped_reason(with(good, "n", &huge)).unwrap_or_default();
    assert!(reason.contains("8200 bits"), "{reason:?}");
}

#[test]
fn an_rsa_modulus_with_leading_zero_octets_is_read_as_its_value() {
    use aws_lc_rs::signature::{KeyPair as _, RsaPublicKeyComponents};
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let public: RsaPublicKeyComponents<Vec<u8>> = pair.public_key().into();
    let mut n = vec![0u8, 0];
    n.extend_from_slice(&public.n);
    let jwk = serde_json::json!({"kty": "RSA", "kid": "z",
        "n": URL_SAFE_NO_PAD.encode(&n), "e": URL_SAFE_NO_PAD.encode(&public.e)});
    let doc = serde_json::json!({ "keys": [jwk] });
    let (set, skipped) = KeySet::from_jwks(doc.to_string().as_bytes(), all()).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    let mut sig = vec![0u8; pair.public_modulus_len()];
    let rng = aws_lc_rs::rand::SystemRandom::new();
    pair.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &rng,
        b"msg",
        &mut sig,
    )
    .unwrap();
    let key = set.find(Some("z"), Alg::RS256).unwrap();
    let sig = URL_SAFE_NO_PAD.encode(&sig);
    assert!(jsonwebtoken::crypto::verify(&sig, b"msg", &key.decoding, Alg::RS256.jwt()).unwrap());
}

#[test]
fn ec_points_off_the_curve_are_dropped() {
    let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
    )
    .unwrap();
    use aws_lc_rs::signature::KeyPair as _;
    let point = pair.public_key().as_ref();
    let on = serde_json::json!({"kty": "EC", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])});
    assert_eq!(skipped_reason(on.clone()), None);
    let mut y = point[33..].to_vec();
    y[31] ^= 1;
    let reason = skipped_reason(with(on.clone(), "y", &y)).unwrap_or_default();
    assert!(reason.contains("not a point on P-256"), "{reason:?}");
    let reason = skipped_reason(with(with(on, "x", &[0; 32]), "y", &[0; 32]));
    assert!(reason.is_some_and(|r| r.contains("not a point on P-256")));
}

/// The y-coordinates (little-endian, sign bit clear) of the Ed25519 points of small order,
/// canonical or not, listed independently of the decompression the check uses.
const SMALL_ORDER_ED25519: [[u8; 32]; 7] = [
    // 0 (order 4)
    [
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00,
    ],
    // 1 (the identity)
    [
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00,
    ],
    // p - 1 (order 2)
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // p (0 again, not canonical)
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // p + 1 (1 again, not canonical)
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    // order 8
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    // order 8
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
];

/// Every encoding of an Ed25519 point of small order: each y of the table with either
/// sign bit.
fn small_order_ed25519() -> Vec<[u8; 32]> {
    SMALL_ORDER_ED25519
        .iter()
        .flat_map(|y| {
            let mut signed = *y;
            signed[31] |= 0x80;
            [*y, signed]
        })
        .collect()
}

#[test]
fn small_order_ed25519_keys_are_dropped_because_anyone_can_sign_for_them() {
    // Why: with the all-zero key, the signature R = identity, S = 0 verifies about one
    // message in four, so whoever finds one forges a token without any private key.
    let zero = DecodingKey::from_ed_der(&[0; 32]);
    let mut trivial = [0u8; 64];
    trivial[0] = 1;
    let trivial = URL_SAFE_NO_PAD.encode(trivial);
    let forged = (0..32)
        .filter(|i| {
            let msg = format!("claims {i}");
            jsonwebtoken::crypto::verify(&trivial, msg.as_bytes(), &zero, Alg::EdDSA.jwt())
                .unwrap_or(false)
        })
        .count();
    assert!(
        forged > 0,
        "the verifier itself does not refuse the zero key"
    );

    let okp = |x: &[u8]| serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(x)});
    assert!(small_order_ed25519().contains(&[0; 32]));
    for x in small_order_ed25519() {
        let reason = skipped_reason(okp(&x)).unwrap_or_default();
        assert!(reason.contains("small order"), "{x:02x?}: {reason:?}");
    }
    let pair = aws_lc_rs::signature::Ed25519KeyPair::generate().unwrap();
    use aws_lc_rs::signature::KeyPair as _;
    assert_eq!(skipped_reason(okp(pair.public_key().as_ref())), None);
}

#[test]
fn ed25519_keys_that_decode_to_no_curve_point_are_dropped() {
    let okp = |x: &[u8]| serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "off", "x": URL_SAFE_NO_PAD.encode(x)});
    // y = 2: (y² - 1) / (d·y² + 1) is no square mod p; y = 3 is a point.
    let mut off = [0u8; 32];
    off[0] = 2;
    let reason = skipped_reason(okp(&off)).unwrap_or_default();
    assert!(reason.contains("no curve point"), "{reason:?}");
    let mut on = [0u8; 32];
    on[0] = 3;
    assert_eq!(skipped_reason(okp(&on)), None);
    // y = p + 2 is no canonical encoding.
    let mut above_p = [0xffu8; 32];
    above_p[0] = 0xef;
    above_p[31] = 0x7f;
    assert!(skipped_reason(okp(&above_p)).is_some_and(|r| r.contains("no curve point")));
    // Real keys always decode.
    for _ in 0..32 {
        let pair = aws_lc_rs::signature::Ed25519KeyPair::generate().unwrap();
        use aws_lc_rs::signature::KeyPair as _;
        assert_eq!(skipped_reason(okp(pair.public_key().as_ref())), None);
    }
}

#[test]
fn ed25519_is_also_called_eddsa() {
    assert_eq!(Alg::parse("Ed25519"), Some(Alg::EdDSA));
    assert_eq!(Alg::parse("none"), None);
    assert_eq!(Alg::parse("HS256"), None);
}

fn only_key(jwk: Value) -> Key {
    let doc = serde_json::json!({ "keys": [jwk] });
    let (set, skipped) = KeySet::from_jwks(doc.to_string().as_bytes(), all()).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    set.keys()[0].clone()
}

#[test]
fn rsa_thumbprint_is_the_one_rfc_7638_computes_for_its_example_key() {
    // RFC 7638, section 3.1.
    let key = only_key(serde_json::json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    }));
    assert_eq!(
        key.thumbprint_b64(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn okp_thumbprint_is_the_one_rfc_8037_computes_for_its_example_key() {
    // RFC 8037, appendix A.3.
    let key = only_key(serde_json::json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    }));
    assert_eq!(
        key.thumbprint_b64(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
}

#[test]
fn ec_thumbprint_agrees_with_jsonwebtoken() {
    use aws_lc_rs::signature::KeyPair as _;
    for (curve, alg, len) in [
        ("P-256", &signature::ECDSA_P256_SHA256_FIXED_SIGNING, 32),
        ("P-384", &signature::ECDSA_P384_SHA384_FIXED_SIGNING, 48),
    ] {
        let pair = signature::EcdsaKeyPair::generate(alg).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = serde_json::json!({
            "kty": "EC",
            "crv": curve,
            "x": URL_SAFE_NO_PAD.encode(&point[1..=len]),
            "y": URL_SAFE_NO_PAD.encode(&point[len + 1..]),
            "kid": "1"
        });
        let reference: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let expected = reference
            .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .unwrap();
        assert_eq!(only_key(jwk).thumbprint_b64(), expected, "{curve}");
    }
}

#[test]
fn an_rsa_thumbprint_ignores_leading_zero_octets_kid_and_alg() {
    let jwk = rsa_jwk("a", 256);
    let mut padded = jwk.clone();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    padded["n"] = URL_SAFE_NO_PAD.encode([&[0u8][..], &n].concat()).into();
    padded["e"] = URL_SAFE_NO_PAD.encode([0u8, 1, 0, 1]).into();
    padded["kid"] = "other".into();
    padded["alg"] = "RS256".into();
    assert_eq!(only_key(jwk).thumbprint, only_key(padded).thumbprint);
}

#[test]
fn the_committed_development_key_is_recognised_whatever_its_kid() {
    let doc: Value = serde_json::from_str(DEV_JWKS).unwrap();
    let mut jwk = doc["keys"][0].clone();
    assert!(only_key(jwk.clone()).is_dev_key());
    jwk["kid"] = "renamed".into();
    jwk.as_object_mut().unwrap().remove("alg");
    assert!(only_key(jwk).is_dev_key());
    assert!(!only_key(rsa_jwk("a", 256)).is_dev_key());
}

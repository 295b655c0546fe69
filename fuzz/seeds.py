#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/.

Run from anywhere: `python3 fuzz/seeds.py` (needs the `cryptography` package). The seeds are
committed; run this again only to change them. Tokens are signed with the development key in
config/keys/ (the example configuration's dev-oidc SSO, and the token target's RSA SSO) and
with the token target's constant EC and Ed25519 keys, and expire in 2100.
"""

import base64
import hashlib
import hmac
import json
import pathlib
import shutil

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, utils

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
EXP = 4102444800  # 2100-01-01
DEV_ISSUER = "https://dev-idp.claimgate.local"
RSA_ISSUER = "https://rsa.fuzz.example"
MIXED_ISSUER = "https://mixed.fuzz.example"

DEV_KEY = serialization.load_pem_private_key(
    (ROOT / "config/keys/dev-only-private-key.pem").read_bytes(), password=None
)
EC_KEY = ec.derive_private_key(int.from_bytes(bytes([7] * 32), "big"), ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes([9] * 32))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(header: dict | str, claims: dict | str, key=DEV_KEY, alg="RS256") -> str:
    h = header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))
    c = claims if isinstance(claims, str) else json.dumps(claims, separators=(",", ":"))
    signing_input = f"{b64(h.encode())}.{b64(c.encode())}".encode()
    if alg == "RS256":
        sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "PS256":
        sig = key.sign(
            signing_input,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
            hashes.SHA256(),
        )
    elif alg == "ES256":
        r, s = utils.decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == "EdDSA":
        sig = key.sign(signing_input)
    else:
        raise ValueError(alg)
    return f"{signing_input.decode()}.{b64(sig)}"


# ---- protobuf, as much as a CheckRequest needs ---------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(tag: int, body: bytes | str) -> bytes:
    if isinstance(body, str):
        body = body.encode()
    return varint(tag << 3 | 2) + varint(len(body)) + body


def entry(key: str, value: str) -> bytes:
    return field(1, key) + field(2, value)


def check_request(method, path, headers=(), raw=False, ext=(), host="api.example.com"):
    """A CheckRequest as Envoy sends it: headers as the map, or (raw) as header_map."""
    http = field(1, "1234567890") + field(2, method) + field(4, path) + field(5, host)
    http += field(6, "https") + field(10, "HTTP/1.1")
    all_headers = [(":authority", host), (":method", method), (":path", path), *headers]
    if raw:
        http += field(13, b"".join(field(1, field(1, k) + field(3, v)) for k, v in all_headers))
    else:
        http += b"".join(field(3, entry(k, v)) for k, v in all_headers)
    attrs = field(4, field(2, http)) + b"".join(field(10, entry(k, v)) for k, v in ext)
    return field(1, attrs)


def write(target: str, name: str, data: bytes) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def dev_token(**claims) -> str:
    base = {"iss": DEV_ISSUER, "aud": "claimgate", "sub": "repo:acme/web:ref:refs/heads/main",
            "exp": EXP, "iat": 1700000000}
    base.update(claims)
    return sign({"alg": "RS256", "kid": "dev-rsa-1", "typ": "JWT"}, base)


def check_codec() -> None:
    fixtures = ROOT / "tests/fixtures/check_requests"
    for name in ["map-get-bearer", "raw-get-bearer", "map-h2-get-bearer", "raw-h2-get-bearer",
                 "map-context-extensions", "raw-context-extensions", "map-bare-cr-in-value",
                 "raw-bare-cr-in-value", "map-custom-method", "raw-absolute-uri"]:
        src = fixtures / f"{name}.bin"
        if src.exists():
            shutil.copy(src, CORPUS / "check_codec" / f"envoy-{name}.bin")
    web = dev_token(repository="acme/web")
    api = dev_token(repository="acme/api")
    prod = dev_token(repository="acme/api", environment="prod", ref="refs/heads/main")
    cases = {
        "allow-viewer": check_request("GET", "/v1/models/acme/llama-70b/info",
                                      [("authorization", f"Bearer {web}")]),
        "allow-viewer-raw": check_request("GET", "/v1/models/acme/llama-70b/info",
                                          [("Authorization", f"Bearer {web}")], raw=True),
        "deny-insufficient-role": check_request("PUT", "/v1/models/acme/llama-70b/weights",
                                                [("authorization", f"Bearer {web}")]),
        "allow-editor-removes-headers": check_request(
            "POST", "/v1/models/acme/llama-70b/weights",
            [("authorization", f"Bearer {api}"), ("x-claimgate-identity", "admin"),
             ("x_claimgate_role", "manager"), ("x-request-id", "req-1")]),
        "allow-manager-extensions": check_request(
            "POST", "/anything", [("authorization", f"Bearer {prod}")], raw=True,
            ext=[("resource", "workspace:prod"), ("role", "manager")]),
        "dry-run-extension": check_request(
            "DELETE", "/v1/workspaces/prod/x", [("authorization", f"Bearer {web}")],
            ext=[("enforcement", "dry_run")]),
        "public": check_request("GET", "/healthz?probe=1"),
        "two-authorizations": check_request(
            "GET", "/v1/models/acme/llama-70b/info",
            [("authorization", f"Bearer {web}"), ("Authorization", f"Bearer {api}")], raw=True),
        "encoded-letter": check_request("GET", "/v1/workspaces/%70rod/x",
                                        [("authorization", f"Bearer {prod}")]),
        "no-http": field(1, field(4, field(1, varint(8) + varint(1)))),
    }
    for name, data in cases.items():
        write("check_codec", f"{name}.bin", data)
    # Merged repeats: the same message twice, and an unknown group.
    write("check_codec", "merged-repeat.bin", cases["allow-viewer"] + cases["deny-insufficient-role"])
    write("check_codec", "unknown-group.bin",
          varint(99 << 3 | 3) + varint(5 << 3 | 0) + varint(1) + varint(99 << 3 | 4) + cases["public"])


def token() -> None:
    now_claims = {"iss": RSA_ISSUER, "aud": "claimgate", "sub": "repo:acme/api:ref:refs/heads/main",
                  "exp": EXP}
    mixed = dict(now_claims, iss=MIXED_ISSUER, aud=["fuzz", "x"])
    rsa_h = {"alg": "RS256", "kid": "dev-rsa-1", "typ": "JWT"}
    tokens = {
        "rs256": sign(rsa_h, now_claims),
        "ps256": sign({"alg": "PS256", "kid": "dev-rsa-1"}, now_claims, alg="PS256"),
        "es256": sign({"alg": "ES256", "kid": "ec-1"}, mixed, EC_KEY, "ES256"),
        "eddsa": sign({"alg": "EdDSA", "kid": "ed-1"}, mixed, ED_KEY, "EdDSA"),
        "no-kid": sign({"alg": "RS256"}, now_claims),
        "expired": sign(rsa_h, dict(now_claims, exp=1000000000)),
        "not-yet": sign(rsa_h, dict(now_claims, nbf=EXP - 1)),
        "float-exp": sign(rsa_h, dict(now_claims, exp=4102444800.5)),
        "wrong-aud": sign(rsa_h, dict(now_claims, aud=["fuzz"])),
        "sub-crlf": sign(rsa_h, dict(now_claims, sub="a\r\nx-evil: 1")),
        "dup-alg": sign('{"alg":"RS256","kid":"dev-rsa-1","alg":"none"}', now_claims),
        "dup-claim": sign(rsa_h, '{"iss":"%s","aud":"claimgate","sub":"a","exp":%d,"sub":"b"}'
                          % (RSA_ISSUER, EXP)),
        "cty-jwt": sign(dict(rsa_h, cty="JWT"), now_claims),
        "jku": sign(dict(rsa_h, jku="https://evil.example/jwks"), now_claims),
        "nested-claims": sign(rsa_h, dict(now_claims, a={"b": [1, {"c": None}]}, n=1e308)),
    }
    public_n = b64(DEV_KEY.public_key().public_numbers().n.to_bytes(256, "big")).encode()
    hs_input = f"{b64(json.dumps({'alg': 'HS256', 'kid': 'dev-rsa-1'}).encode())}.{b64(json.dumps(now_claims).encode())}"
    tokens["hs256-confusion"] = hs_input + "." + b64(
        hmac.new(public_n, hs_input.encode(), hashlib.sha256).digest())
    none_header = b64(b'{"alg":"none"}')
    tokens["alg-none"] = f"{none_header}.{b64(json.dumps(now_claims).encode())}."
    tokens["padded"] = tokens["rs256"].replace(".", "=.", 1)
    for name, t in tokens.items():
        write("token", name, b"\x00" + t.encode())
    # Built tokens: the bytes after an odd first byte choose the parts.
    write("token", "built-zeros", b"\x01" + bytes(64))
    write("token", "built-mixed", b"\x01" + bytes(range(0, 256, 3)))


def config_loader() -> None:
    for name in ["sso.yaml", "identities.yaml", "resources.yaml", "routes.yaml"]:
        write("config_loader", f"example-{name}", (ROOT / "config" / name).read_bytes())
    # One document cannot repeat a top-level key; the files go to a.yaml and b.yaml instead.
    write("config_loader", "example-split",
          (ROOT / "config/sso.yaml").read_bytes() + b"\n#8<\n" + (ROOT / "config/identities.yaml").read_bytes())
    write("config_loader", "example-routes-resources",
          (ROOT / "config/resources.yaml").read_bytes() + b"\n#8<\n" + (ROOT / "config/routes.yaml").read_bytes())
    cases = {
        "tab-indent": b"routes:\n\t- path: /x\n",
        "deep": b"routes: " + b"[" * 200 + b"]" * 200 + b"\n",
        "aliases": b"a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n",
        "duplicate-key": b"routes: []\nroutes: []\n",
        "unknown-field": b"routes:\n  - path: /x\n    public: true\n    colour: red\n",
        "bad-pattern": b"external_identities:\n  - name: x\n    sso_fqn: dev-oidc\n    claims:\n      sub: {like: 'a\\\\b'}\n",
        "long-scalar": b"sso_integrations: " + b"x" * 3000 + b"\n",
        "not-utf8": b"routes:\n  - path: /\xff\xfe\n",
        "bom": b"\xef\xbb\xbfroutes: []\n",
        "multi-doc": b"routes: []\n---\nroutes: []\n",
        "missing-key-file": b"sso_integrations:\n  - name: s\n    type: oidc\n    issuer: https://s\n    audiences: [a]\n    jwks_file: keys/none.json\n",
        "absolute-key-file": b"sso_integrations:\n  - name: s\n    type: oidc\n    issuer: https://s\n    audiences: [a]\n    jwks_file: /etc/passwd\n",
    }
    for name, data in cases.items():
        write("config_loader", name, data)


def glob() -> None:
    # Mode 0 (text): pattern NUL value NUL other pattern.
    cases = {
        "github-sub": ("repo:acme/*:ref:refs/heads/main", "repo:acme/api:ref:refs/heads/main", "repo:*"),
        "both-forms": ("repo:acme@1234567/*", "repo:acme@1234567/api:pull_request", "repo:acme/*"),
        "not-like": ("pull_request*", "pull_request_target", "push"),
        "question": ("a?c", "a\u00e9c", "*b*"),
        "escapes": ("a\\*b\\?c\\\\", "a*b?c\\", "a*"),
        "bad-escape": ("a\\b", "a\\b", ""),
        "stars": ("*ab*ba*", "abba", "*a?b*"),
        "too-many": ("*" * 17, "", "?" * 16),
        "empty": ("", "", "*"),
        "adversarial": ("*a*a*a*a*a*b", "a" * 300, "*a?a*a?a*a?c*"),
    }
    for name, (p, v, o) in cases.items():
        write("glob", name, b"\x00" + f"{p}\x00{v}\x00{o}".encode())
    # Mode 2: a unit repeated; the two bytes after the first NUL give the count.
    write("glob", "long-repeat", b"\x02" + bytes([2, 0, 2, 0, 2, 1]) + b"\x00" + bytes([0xff, 0x1f, 0, 0]))
    write("glob", "small-alphabet", b"\x01" + bytes([2, 0, 3, 1, 2]) + b"\x00" + bytes([0, 1, 0, 1, 5]))


def normalize() -> None:
    paths = [
        "/v1/things/admin/x", "/v1/things/%61dmin/x", "/v1/things/%2e%2e/admin", "/v1/./things",
        "/v1/things/a:b/x", "/v1/things/a%3Ab/x", "/v1/things/a%3ab/x", "/v1/things/caf%C3%A9/x",
        "/v1//things", "/v1/things;jsessionid=1/admin", "/v1/things/..;/admin", "/v1\\things",
        "/v1/things/%2F/x", "/v1/things/x?%61=1#%2e", "/", "", "v1/things", "/v1/things/%7E/x",
        "/v1/things/%zz/x", "/v1/things/%",
    ]
    for i, p in enumerate(paths):
        write("normalize", f"path-{i:02}", b"\x00" + p.encode())
    write("normalize", "pieces", b"\x01" + bytes([0, 1, 2, 0x80 | 9, 22]))


if __name__ == "__main__":
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    (CORPUS / "check_codec").mkdir(parents=True)
    check_codec()
    token()
    config_loader()
    glob()
    normalize()
    for d in sorted(CORPUS.iterdir()):
        files = list(d.iterdir())
        print(f"{d.name}: {len(files)} files, {sum(f.stat().st_size for f in files)} bytes")

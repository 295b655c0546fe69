"""Derive the load benchmark's Envoy configuration from envoy/envoy.yaml.

One listener per case, each a copy of the quickstart's `ingress` listener (same connection
manager settings, same routes, same header_mutation filter, same router, same upstream); they
differ only in the authorization filters between header_mutation and the router:

  noauth           none
  floor            ext_authz to the do-nothing floor server (examples/floor.rs)
  floor_identity   the floor answering with a constant allow shaped like claimgate's
  claimgate_warm   ext_authz to claimgate (fed one token)
  claimgate_unix   the same, to a claimgate listening on a Unix socket (Envoy's pipe address)
  claimgate_lean   the same over TCP, to a claimgate serving with --allow-metadata decision-id
  claimgate_cold   ext_authz to a second claimgate (fed a pool of tokens it has never seen)
  jwt_rbac         Envoy's own jwt_authn + rbac on the same token, verifying every request
  jwt_rbac_cached  the same with jwt_authn's JWT cache on (Envoy's analogue of a warm cache)
  wasm             claimgate inside Envoy: envoy/envoy-wasm.yaml's proxy-wasm filter with the
                   bundle as its configuration, and that file's route metadata (only when
                   WASM_SRC, WASM_FILE and BUNDLE_FILE are given)

The ingress access log is dropped from every copy: it is not authorization work, and it would
cost every case the same formatting and write.

usage: bench_envoy.py SRC OUT PORTS_JSON JWKS_PATH [WASM_SRC WASM_FILE BUNDLE_FILE]
"""

import copy
import json
import sys

import yaml

EXT_AUTHZ = "envoy.filters.http.ext_authz"
WASM = "envoy.filters.http.wasm"
ISSUER = "https://dev-idp.claimgate.local"
AUDIENCE = "claimgate"
# The request every case sends, and what claimgate's example routes decide for it.
BENCH_METHOD = "GET"
BENCH_PREFIX = "/v1/models/acme/llama-70b/"


def socket(port):
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def cluster_like(base, name, port):
    cluster = copy.deepcopy(base)
    cluster["name"] = name
    cluster["load_assignment"]["cluster_name"] = name
    cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] = socket(
        port
    )
    return cluster


def jwt_filters(jwks_path, cached):
    provider = {
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "local_jwks": {"filename": jwks_path},
        # Keep the Authorization header, as the ext_authz paths do.
        "forward": True,
        "payload_in_metadata": "jwt_payload",
        # claimgate's example SSO allows 30 s of clock skew.
        "clock_skew_seconds": 30,
    }
    if cached:
        provider["jwt_cache_config"] = {"jwt_cache_size": 65536}
    jwt = {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"dev": provider},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "dev"}}],
        },
    }
    # The decision claimgate makes for the bench request, written as RBAC: a GET under the
    # model's prefix, by a token whose repository claim is acme/api.
    rbac = {
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {
                "action": "ALLOW",
                "policies": {
                    "acme-api-reads-the-model": {
                        "permissions": [
                            {
                                "and_rules": {
                                    "rules": [
                                        {
                                            "header": {
                                                "name": ":method",
                                                "string_match": {"exact": BENCH_METHOD},
                                            }
                                        },
                                        {"url_path": {"path": {"prefix": BENCH_PREFIX}}},
                                    ]
                                }
                            }
                        ],
                        "principals": [
                            {
                                # Principal.metadata is deprecated in 1.40 for this form.
                                "sourced_metadata": {
                                    "metadata_source": "DYNAMIC",
                                    "metadata_matcher": {
                                        "filter": "envoy.filters.http.jwt_authn",
                                        "path": [{"key": "jwt_payload"}, {"key": "repository"}],
                                        "value": {"string_match": {"exact": "acme/api"}},
                                    },
                                }
                            }
                        ],
                    }
                },
            },
        },
    }
    return [jwt, rbac]


def ingress_of(config):
    listeners = {l["name"]: l for l in config["static_resources"]["listeners"]}
    return listeners["ingress"]["filter_chains"][0]["filters"][0]["typed_config"]


def wasm_case(wasm_src, wasm_file, bundle_file):
    """envoy-wasm.yaml's claimgate filter, filled in as scripts/envoy-wasm.sh fills it, and its
    route metadata by route name."""
    hcm = ingress_of(yaml.safe_load(open(wasm_src)))
    (wasm,) = [f for f in hcm["http_filters"] if f["name"] == WASM]
    config = wasm["typed_config"]["config"]
    assert config["vm_config"]["code"]["local"]["filename"] == "CLAIMGATE_WASM"
    assert config["configuration"]["value"] == "CLAIMGATE_BUNDLE"
    config["vm_config"]["code"]["local"]["filename"] = wasm_file
    config["configuration"]["value"] = open(bundle_file).read()
    metadata = {
        route["name"]: route["metadata"]
        for vhost in hcm["route_config"]["virtual_hosts"]
        for route in vhost["routes"]
        if "metadata" in route
    }
    return wasm, metadata


def main():
    src, out, ports_json, jwks_path = sys.argv[1:5]
    wasm_args = sys.argv[5:8]
    ports = json.loads(ports_json)
    base = yaml.safe_load(open(src))
    static = base["static_resources"]
    listeners = {l["name"]: l for l in static["listeners"]}
    clusters = {c["name"]: c for c in static["clusters"]}
    ingress = listeners["ingress"]
    hcm = ingress["filter_chains"][0]["filters"][0]["typed_config"]
    filters = hcm["http_filters"]
    names = [f["name"] for f in filters]
    assert names == [
        "envoy.filters.http.header_mutation",
        EXT_AUTHZ,
        "envoy.filters.http.router",
    ], f"envoy/envoy.yaml's ingress filters changed ({names}): update this script"
    mutation, ext_authz, router = filters

    def authz_to(cluster):
        f = copy.deepcopy(ext_authz)
        f["typed_config"]["grpc_service"]["envoy_grpc"]["cluster_name"] = cluster
        return [f]

    cases = {
        "noauth": [],
        "floor": authz_to("floor"),
        "floor_identity": authz_to("floor_identity"),
        "claimgate_warm": authz_to("claimgate_warm"),
        "claimgate_unix": authz_to("claimgate_unix"),
        "claimgate_lean": authz_to("claimgate_lean"),
        "claimgate_cold": authz_to("claimgate_cold"),
        "jwt_rbac": jwt_filters(jwks_path, cached=False),
        "jwt_rbac_cached": jwt_filters(jwks_path, cached=True),
    }
    route_metadata = {}
    if wasm_args:
        wasm, route_metadata["wasm"] = wasm_case(*wasm_args)
        cases["wasm"] = [wasm]
    bench_listeners = []
    for case, auth in cases.items():
        listener = copy.deepcopy(ingress)
        listener["name"] = f"bench_{case}"
        listener["address"] = socket(ports["envoy"][case])
        lhcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
        lhcm["stat_prefix"] = f"bench_{case}"
        lhcm.pop("access_log", None)
        lhcm["http_filters"] = [copy.deepcopy(mutation)] + auth + [copy.deepcopy(router)]
        if not any(f["name"] == EXT_AUTHZ for f in auth):
            # Per-route ext_authz settings mean nothing without the filter.
            for vhost in lhcm["route_config"]["virtual_hosts"]:
                for route in vhost["routes"]:
                    route.get("typed_per_filter_config", {}).pop(EXT_AUTHZ, None)
                    if route.get("typed_per_filter_config") == {}:
                        del route["typed_per_filter_config"]
        if case in route_metadata:
            # The filter reads per-route resource and role from the route's metadata.
            names = set()
            for vhost in lhcm["route_config"]["virtual_hosts"]:
                for route in vhost["routes"]:
                    names.add(route.get("name"))
                    if route.get("name") in route_metadata[case]:
                        route["metadata"] = copy.deepcopy(route_metadata[case][route["name"]])
            missing = set(route_metadata[case]) - names
            assert not missing, f"routes {missing} of the wasm example are not in {src}"
        bench_listeners.append(listener)

    upstream = copy.deepcopy(listeners["demo_upstream"])
    upstream["address"] = socket(ports["upstream"])
    # The demo upstream without its echo of the identity headers: here the upstream shares
    # Envoy's one worker with the proxy being measured, so every header it copies into its
    # response (and the proxy then forwards) would be charged to the proxy. A real upstream
    # runs in its own process. The identity headers still travel to the upstream.
    for vhost in upstream["filter_chains"][0]["filters"][0]["typed_config"]["route_config"][
        "virtual_hosts"
    ]:
        for route in vhost["routes"]:
            route.pop("response_headers_to_add", None)
    bench_listeners.append(upstream)

    # The floor and both claimgates get claimgate's own cluster settings (HTTP/2, timeouts).
    grpc_clusters = [
        cluster_like(clusters["claimgate"], name, ports["grpc"][name])
        for name in ("floor", "floor_identity", "claimgate_warm", "claimgate_cold", "claimgate_lean")
    ]
    unix = cluster_like(clusters["claimgate"], "claimgate_unix", 0)
    unix["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] = {
        "pipe": {"path": ports["unix_socket"]}
    }
    grpc_clusters.append(unix)
    bench = {
        "admin": {"address": socket(ports["admin"])},
        "static_resources": {
            "listeners": bench_listeners,
            "clusters": [cluster_like(clusters["upstream"], "upstream", ports["upstream"])]
            + grpc_clusters,
        },
    }
    with open(out, "w") as f:
        yaml.safe_dump(bench, f, sort_keys=False)


if __name__ == "__main__":
    main()

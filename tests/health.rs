//! `grpc.health.v1.Health` on the gRPC port, asked by a real gRPC client: `SERVING` exactly
//! when `/readyz` is 200, and it switches when readiness does.

mod common;

use std::time::Duration;

use claimgate::server::provider::ProviderOptions;
use common::provider::{Mode, Provider};
use common::*;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

async fn health(
    client: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
) -> Result<ServingStatus, tonic::Code> {
    tokio::time::timeout(
        Duration::from_secs(5),
        client.check(HealthCheckRequest {
            service: service.to_owned(),
        }),
    )
    .await
    .expect("health check answered")
    .map(|r| r.into_inner().status())
    .map_err(|s| s.code())
}

async fn health_client(server: &TestServer) -> HealthClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
}

#[tokio::test]
async fn health_is_serving_exactly_when_readyz_is_200_and_follows_it() {
    let key = TestKey::generate(Kind::Es256, "k1");
    let idp = Provider::start(jwks(&[&key])).await;
    // The first key load hangs until the provider timeout: not ready until then.
    idp.set_mode(Mode::Hang);
    let dir = common::provider::remote_config(&idp.jwks_uri());
    let opts = ProviderOptions {
        timeout: Duration::from_secs(2),
        ..ProviderOptions::default()
    };
    let server = TestServer::builder(dir.path()).provider(opts).start().await;
    let mut client = health_client(&server).await;

    let (status, body) = server.http_get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(server.metric("claimgate_ready").await, Some(0.0));
    for service in ["", "envoy.service.auth.v3.Authorization"] {
        assert_eq!(
            health(&mut client, service).await,
            Ok(ServingStatus::NotServing),
            "{service:?} while /readyz is 503"
        );
    }
    // A watcher sees the switch as it happens.
    let mut watch = client
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap().status();
    assert_eq!(first, ServingStatus::NotServing);

    // The provider answers again; the hung load gives up, the next refresh loads the keys.
    idp.set_mode(Mode::Normal);
    let next = tokio::time::timeout(Duration::from_secs(15), watch.message())
        .await
        .expect("the watcher is told within the bound")
        .unwrap()
        .unwrap()
        .status();
    assert_eq!(next, ServingStatus::Serving);
    let (status, body) = server.http_get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.metric("claimgate_ready").await, Some(1.0));
    for service in ["", "envoy.service.auth.v3.Authorization"] {
        assert_eq!(
            health(&mut client, service).await,
            Ok(ServingStatus::Serving),
            "{service:?} while /readyz is 200"
        );
    }
    assert_eq!(
        health(&mut client, "some.other.Service").await,
        Err(tonic::Code::NotFound)
    );
    // An open watch does not hold up the drain: it ends when the shutdown begins.
    tokio::time::timeout(Duration::from_secs(10), server.stop())
        .await
        .expect("the server stops with a watch open");
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = watch.message().await {}
    })
    .await;
    assert!(ended.is_ok(), "the watch ended with the server");
}

#[tokio::test]
async fn a_server_with_local_keys_is_serving_from_its_first_health_check() {
    let key = TestKey::generate(Kind::Es256, "k1");
    let dir = fixture_config(&key);
    let server = TestServer::start(dir.path()).await;
    let mut client = health_client(&server).await;
    assert_eq!(server.http_get("/readyz").await.0, 200);
    assert_eq!(health(&mut client, "").await, Ok(ServingStatus::Serving));
    server.stop().await;
}

# claimgate's image: the binary alone on a distroless base, as the non-root user 65532, which
# is what deploy/kubernetes/ runs it as (runAsUser 65532, read-only root filesystem).
#   docker build -t claimgate .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
RUN cargo build --release --locked --bin claimgate

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/claimgate /usr/local/bin/claimgate
USER 65532:65532
# gRPC ext_authz, and /metrics /healthz /readyz: the binary's default ports.
EXPOSE 9001 9090
ENTRYPOINT ["/usr/local/bin/claimgate"]
CMD ["serve", "--config", "/etc/claimgate"]

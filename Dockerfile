# ciwatch-mcp as a container sidecar: the Streamable HTTP server on port 8080, no shell tools.
#
#   docker build -t ciwatch-mcp .
#   docker run --rm -p 8080:8080 -e BUILDKITE_TOKEN=bkua_… -e CIWATCH_HTTP_TOKEN=… ciwatch-mcp

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
# Every target the manifest names must exist, so the benches and the test binary get stubs too;
# the benches' names are read from the manifest, not kept here by hand.
RUN mkdir -p src benches tests/it \
    && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && for bench in $(sed -n '/^\[\[bench\]\]/,/^$/s/^name = "\(.*\)"/\1/p' Cargo.toml); do echo 'fn main() {}' > benches/$bench.rs; done \
    && echo '' > tests/it/main.rs \
    && cargo build --release --locked --no-default-features \
    && rm -rf src benches
COPY src ./src
COPY benches ./benches
# The image serves real builds only: no demo, no fixture nightly, no mock server.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --no-default-features

# Distroless: glibc and CA certificates, no shell, runs as the non-root user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/ciwatch-mcp /usr/local/bin/ciwatch-mcp
ENV CIWATCH_HTTP_BIND=0.0.0.0:8080 \
    RUST_LOG=info
EXPOSE 8080
USER nonroot
ENTRYPOINT ["/usr/local/bin/ciwatch-mcp", "serve"]

# syntax=docker/dockerfile:1
# Multi-stage build: compile in the Rust image, run in a slim Debian as a
# non-root user. Data lives in the /var/lib/logway volume. libssl3: the
# Kafka client (cluster mode) speaks TLS and SASL/SCRAM through OpenSSL.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p logway && cp target/release/logway /logway

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/logway --create-home logway \
    && apt-get update && apt-get install -y --no-install-recommends ca-certificates curl libssl3 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /logway /usr/local/bin/logway
# No keys in the image: the container refuses to start until keys come
# from the environment or a mounted config (deploy/container.toml).
COPY deploy/container.toml /etc/logway/logway.toml
USER logway
VOLUME ["/var/lib/logway"]
EXPOSE 8080
ENV LOGWAY_STORAGE__DATA_DIR=/var/lib/logway
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["logway", "serve", "--config", "/etc/logway/logway.toml"]

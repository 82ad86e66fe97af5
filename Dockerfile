# syntax=docker/dockerfile:1
# Build stage: compile the release binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
COPY migrations ./migrations
COPY benches ./benches
RUN cargo build --release --locked --bin finpay-qris

# Runtime stage: small, non-root.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --create-home finpay
COPY --from=build /src/target/release/finpay-qris /usr/local/bin/finpay-qris
USER finpay
WORKDIR /app
ENV FINPAY_QRIS__SERVER__LISTEN=0.0.0.0:8080 \
    FINPAY_QRIS__LOG__FORMAT=json
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8080/health/ready || exit 1
ENTRYPOINT ["finpay-qris"]
CMD ["serve"]

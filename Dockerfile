# syntax=docker/dockerfile:1
#
# finpay-qris: a stripped release binary on distroless/cc (glibc, CA
# certificates, no shell), run as the unprivileged user 65532.
# Build: docker build -t finpay-qris .   Demo image (adds busybox sh for the
# simulator demo's start script): docker build --target demo -t finpay-qris:demo .

# ---- build ------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src

# Dependencies first, against placeholder sources: this layer is rebuilt only
# when Cargo.toml or Cargo.lock change, not on every edit of src/.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/verify.rs \
    && cp benches/verify.rs benches/ingest.rs \
    && cargo build --release --locked --bin finpay-qris \
    && rm -rf src benches

COPY migrations ./migrations
COPY src ./src
COPY benches ./benches
# touch: the placeholder's build is newer than the copied sources' mtimes.
RUN touch src/main.rs src/lib.rs build.rs \
    && cargo build --release --locked --bin finpay-qris \
    && strip target/release/finpay-qris \
    && mkdir -p /out/app/data /out/app/keys /out/demo \
    && cp target/release/finpay-qris /out/finpay-qris

# ---- runtime ----------------------------------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /out/finpay-qris /usr/local/bin/finpay-qris
# /app/data: the default SQLite file; /app/keys: where `keygen` writes keys
# (mount yours there). Owned by the runtime user so both work when mounted empty.
COPY --from=build --chown=65532:65532 /out/app /app
WORKDIR /app
USER 65532:65532
ENV FINPAY_QRIS__SERVER__LISTEN=0.0.0.0:8080 \
    FINPAY_QRIS__LOG__FORMAT=json
# 8080: public (SNAP token + notify, /health/*); 8081: internal API + /metrics, never public.
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/finpay-qris"]
CMD ["serve"]

# ---- demo: the same binary with busybox sh (docker-compose.yml, profile demo) ----
FROM gcr.io/distroless/cc-debian12:debug-nonroot AS demo
COPY --from=build /out/finpay-qris /usr/local/bin/finpay-qris
COPY --from=build --chown=65532:65532 /out/app /app
# A new named volume mounted here starts with this owner, so the simulator can write to it.
COPY --from=build --chown=65532:65532 /out/demo /demo
WORKDIR /app
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/finpay-qris"]
CMD ["serve"]

# The last stage is what `docker build` builds without --target.
FROM runtime

# crm-server as a small, non-root image.
#   docker build -t crm-server .
#   docker run -p 8080:8080 -e CRM_DATABASE_URL=postgres://… -e CRM_OIDC_ISSUER=… -e CRM_OIDC_PROJECT_ID=… crm-server
# compose.yaml runs it with PostgreSQL, ZITADEL and NATS (docs/OPERATIONS.md § Containers).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The dependency and target caches survive rebuilds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p crm-server \
    && install -D target/release/crm-server /out/crm-server \
    && mkdir -p /out/data

# glibc, libgcc and CA certificates (S3, the OpenID provider over TLS), no shell, user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/crm-server /usr/local/bin/crm-server
COPY --from=build --chown=65532:65532 /out/data /var/lib/crm
USER 65532:65532
WORKDIR /var/lib/crm
# The data directory holds the SQLite database of a single-container setup, the development
# signing key, the file signing key and files kept locally (none of these with PostgreSQL, a
# configured key and S3 storage).
ENV CRM_DATA_DIR=/var/lib/crm \
    CRM_LISTEN=0.0.0.0:8080 \
    CRM_LOG_FORMAT=json
VOLUME ["/var/lib/crm"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/crm-server"]
CMD ["serve"]

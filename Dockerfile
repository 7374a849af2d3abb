# The cmdb server in a small image: built from source in a Rust image, run as a non-root
# user from a slim Debian image. SQLite (the default) keeps its file in the /data volume;
# set CMDB_DATABASE_URL to a postgres:// URL to use PostgreSQL instead (see compose.yaml).
#
#   docker build -t cmdb .
#   docker run -d --name cmdb -p 127.0.0.1:8080:8080 -v cmdb-data:/data cmdb
#   docker exec cmdb cmdb token create --name admin --role admin

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin cmdb \
 && strip target/release/cmdb

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin cmdb \
 && mkdir -p /data \
 && chown cmdb:cmdb /data
COPY --from=build /src/target/release/cmdb /usr/local/bin/cmdb
USER cmdb
WORKDIR /data
VOLUME ["/data"]
ENV CMDB_DATABASE_URL="sqlite:///data/cmdb.db?mode=rwc" \
    CMDB_LISTEN="0.0.0.0:8080" \
    CMDB_LOG_FORMAT="json"
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["curl", "-fsS", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["cmdb"]
CMD ["serve"]

# odradek: a Kafka-compatible broker. Build: docker build -t odradek .
# Run:   docker run -p 9092:9092 -v odradek-data:/var/lib/odradek odradek
# Override any server.properties key with further `--override key=value` arguments.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY config ./config
RUN cargo build --release --locked --bin odradek

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/odradek --create-home odradek
COPY --from=build /src/target/release/odradek /usr/local/bin/odradek
COPY config/server.properties /etc/odradek/server.properties
USER 10001
VOLUME ["/var/lib/odradek"]
# 9092: Kafka protocol; 9404: Prometheus metrics (metrics.port).
EXPOSE 9092 9404
# The broker answers TCP on its listener only once its logs are loaded.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9092"]
ENTRYPOINT ["odradek", "broker", "/etc/odradek/server.properties"]
CMD ["--override", "listeners=PLAINTEXT://0.0.0.0:9092", "--override", "advertised.listeners=PLAINTEXT://localhost:9092", "--override", "log.dirs=/var/lib/odradek/kafka-logs"]

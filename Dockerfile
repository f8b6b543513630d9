# syntax=docker/dockerfile:1
# Herald: docker build -t herald --build-arg VERSION=$(git describe --tags --always) .
#         docker run -p 8080:8080 -v herald-data:/data -e HERALD_PUBLISHER_KEY=... herald

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/herald ./cmd/herald \
 && mkdir -p /out/data

# distroless: no shell, no package manager; runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/herald /usr/local/bin/herald
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
ENV HERALD_ADDR=":8080" \
    HERALD_DATA_DIR="/data" \
    HERALD_LOG_FORMAT="json"
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD ["/usr/local/bin/herald", "health", "--url", "http://127.0.0.1:8080/healthz"]
# SIGTERM drains (see docs/OPERATIONS.md); give docker stop more than --shutdown-timeout.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/herald"]
CMD ["serve"]

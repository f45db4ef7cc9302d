# Build: docker build -t channels-sidecar .
# Run:   docker run -p 8080:8080 -v $PWD/sidecar.yaml:/etc/sidecar.yaml \
#          -e SIDECAR_LISTEN=0.0.0.0:8080 channels-sidecar --config /etc/sidecar.yaml
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/channels-sidecar .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/channels-sidecar /usr/local/bin/channels-sidecar
ENV SIDECAR_LISTEN=0.0.0.0:8080
EXPOSE 8080
USER nonroot
ENTRYPOINT ["/usr/local/bin/channels-sidecar"]

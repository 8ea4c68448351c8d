ARG GO_VERSION=1.22
FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY . .
RUN go build -o /out/app ./cmd/app

FROM alpine AS runtime
COPY --from=build /out/app /usr/local/bin/app
COPY --from=0 /etc/ssl/certs /etc/ssl/certs
ENTRYPOINT ["app"]

FROM alpine
HEALTHCHECK NONE --interval=5s

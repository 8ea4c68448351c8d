FROM alpine
VOLUME ["/data", " "]

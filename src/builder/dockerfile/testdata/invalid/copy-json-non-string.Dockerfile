FROM alpine
COPY ["a", null, "/b"]

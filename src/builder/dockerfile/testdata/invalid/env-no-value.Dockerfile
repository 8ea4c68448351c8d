FROM alpine
ENV FOO

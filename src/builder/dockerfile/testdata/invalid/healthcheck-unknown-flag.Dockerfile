FROM alpine
HEALTHCHECK --foo=1 CMD true

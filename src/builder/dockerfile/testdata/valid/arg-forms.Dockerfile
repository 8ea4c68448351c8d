ARG BASE=alpine
ARG VERSION
FROM ${BASE}:${VERSION:-latest}
ARG foo bar=baz
ARG abc="123 456" def
ARG empty=
ARG CACHEBUST=1 OTHER='single quoted'

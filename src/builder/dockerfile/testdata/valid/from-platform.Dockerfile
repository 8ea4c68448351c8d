FROM --platform=$BUILDPLATFORM golang:1.22 as builder
FROM --platform=linux/arm64 alpine
FROM scratch

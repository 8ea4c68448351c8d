FROM alpine TO base

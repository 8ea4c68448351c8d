ARG =value
FROM alpine

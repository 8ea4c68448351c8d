FROM alpine
ENV =value

FROM alpine
ONBUILD FROM busybox

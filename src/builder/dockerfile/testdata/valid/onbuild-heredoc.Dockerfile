FROM busybox
ONBUILD RUN <<EOF
echo in a child image
EOF
ONBUILD COPY <<EOF /etc/motd
welcome
EOF

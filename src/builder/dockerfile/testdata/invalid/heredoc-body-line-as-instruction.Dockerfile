FROM alpine
USER <<EOF
root
EOF

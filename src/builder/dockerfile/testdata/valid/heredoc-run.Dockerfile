FROM alpine
RUN <<EOF
apk add curl
echo done
EOF
RUN <<EOF bash
set -e
echo "$HOME"
EOF
RUN cat <<EOF > /etc/app.conf
key=value
EOF

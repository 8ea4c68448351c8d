FROM alpine
COPY <<EOF /usr/share/nginx/html/index.html
<!doctype html>
<p>hello $NAME</p>
EOF
COPY --chmod=0755 <<EOF /usr/local/bin/run
#!/bin/sh
exec "$@"
EOF
ADD <<'EOF' /literal.txt
"foo"
'bar'
EOF

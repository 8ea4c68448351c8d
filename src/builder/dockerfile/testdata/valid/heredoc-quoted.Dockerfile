FROM alpine
RUN <<"EOF"
echo $HOME
EOF
RUN <<'EOF'
echo '$PATH'
EOF
RUN <<eo'f'
echo foo
eof
RUN <<eo\'f
echo foo
eo'f

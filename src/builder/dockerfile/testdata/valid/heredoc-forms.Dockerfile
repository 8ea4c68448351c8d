FROM alpine
RUN <<  EOF
spaced
EOF
RUN 3<<FD cat /dev/fd/3
fd
FD
RUN --mount=type=cache,target=/foo <<MOUNT
echo hello
MOUNT
RUN <<COMMENT
# internal comment, kept
echo hi # trailing
COMMENT

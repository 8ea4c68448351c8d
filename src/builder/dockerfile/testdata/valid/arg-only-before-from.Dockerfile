ARG A=1
ARG B
# comment between
ARG C="x"
FROM alpine

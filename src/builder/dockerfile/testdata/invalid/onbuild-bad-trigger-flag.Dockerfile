FROM alpine
ONBUILD RUN --from=x y

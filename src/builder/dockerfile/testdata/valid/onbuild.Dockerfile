FROM busybox
ONBUILD RUN ["echo", "test"]
ONBUILD RUN echo test
ONBUILD COPY --from=base . /app
ONBUILD ADD . /app/src

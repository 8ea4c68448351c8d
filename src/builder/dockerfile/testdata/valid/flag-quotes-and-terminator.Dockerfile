FROM alpine
COPY --chown="app user":'staff' a /b
COPY --from=build -- --x /y
COPY "quoted file" /dest/

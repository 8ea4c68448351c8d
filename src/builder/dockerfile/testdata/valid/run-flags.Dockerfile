FROM alpine
RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=npmrc,target=/root/.npmrc npm ci
RUN --network=none --security=insecure make test
RUN --mount=type=bind,source=.,target=/src ["make", "-C", "/src"]
RUN echo --from=x --mount=y

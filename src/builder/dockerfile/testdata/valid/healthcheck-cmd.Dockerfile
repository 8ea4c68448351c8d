FROM debian
HEALTHCHECK --interval=5s --timeout=3s --retries=3 \
  CMD /app/check.sh --quiet
HEALTHCHECK   CMD   a b
HEALTHCHECK --timeout=3s CMD ["foo"]
HEALTHCHECK --start-period=0s --start-interval=1m30s --interval=1.5h --timeout=0s --retries=0 cmd ["foo", "bar"]

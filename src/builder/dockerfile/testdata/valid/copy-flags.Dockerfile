FROM alpine
COPY --chown=1000:1000 --chmod=0755 script.sh /usr/local/bin/
COPY --link src/ /src/
COPY --link=false --parents --exclude=*.md --exclude=*.txt docs/ /docs/
COPY -- --weird-name /dest/

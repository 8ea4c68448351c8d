FROM alpine
RUN    sh -c 'echo root:testpass \
        > /tmp/passwd'
CMD echo 'test' | wc -
RUN echo   spaced    out

FROM alpine
COPY <<ONE <<TWO /dest/
1
ONE
2

FROM alpine
RUN a \
  b
WHAT

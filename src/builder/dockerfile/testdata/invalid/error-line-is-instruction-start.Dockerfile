FROM alpine

RUN --bogus \
  echo \
  hi

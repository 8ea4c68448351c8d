FROM alpine
RUN true
rnu echo hi

ARG A=1
# comment
ENV B=2
FROM alpine

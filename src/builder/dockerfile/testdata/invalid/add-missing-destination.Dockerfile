FROM alpine
ADD ["only"]

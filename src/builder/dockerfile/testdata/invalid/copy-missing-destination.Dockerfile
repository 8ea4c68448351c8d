FROM alpine
COPY onlysource

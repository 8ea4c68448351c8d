FROM alpine
COPY <<FILE1 <<FILE2 /dest/
content 1
FILE1
content 2
FILE2
RUN <<A cat /dev/stdin && cat <<B
first
A
second
B

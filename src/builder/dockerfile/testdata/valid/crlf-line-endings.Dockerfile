FROM alpine
RUN echo a \
    b
LABEL a=b
COPY <<EOF /x
line1
EOF
CMD ["sh"]

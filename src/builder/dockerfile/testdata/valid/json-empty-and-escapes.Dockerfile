FROM alpine
CMD []
ENTRYPOINT [""]
RUN ["printf", "a\tb\u00e9 \"q\" \\ \/"]

# This comment ends the parser directives.
# escape=`
FROM image
RUN echo a \
    b
RUN echo c `

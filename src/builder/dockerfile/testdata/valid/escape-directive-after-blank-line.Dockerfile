
# escape=`
FROM image
RUN echo one \
    two
